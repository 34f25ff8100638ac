// The .onebit loader (loader.h). Mirrors onebit/runtime/format.py and graph.py check by check.
#include "onebit/runtime/loader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <set>
#include <tuple>
#include <utility>

namespace onebit::rt {

using json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& msg) { throw FormatError(msg); }

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string repr(const json& j) {
  if (j.is_null()) return "None";
  if (j.is_boolean()) return j.get<bool>() ? "True" : "False";
  if (j.is_string()) return q(j.get<std::string>());
  std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace);  // ASCII: safe to cut
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Saturating product (values are non-negative): beyond `cap` the exact value does not matter.
int64_t prod_capped(const std::vector<int64_t>& v, int64_t cap = std::numeric_limits<int64_t>::max()) {
  int64_t p = 1;
  for (int64_t d : v) {
    if (d == 0) return 0;
  }
  for (int64_t d : v) {
    if (p > cap / d) return cap;
    p *= d;
  }
  return p;
}

// A JSON integer (not a boolean, not a float) that fits int64.
bool as_int(const json& j, int64_t& out) {
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    out = static_cast<int64_t>(u);
    return true;
  }
  if (j.is_number_integer()) {
    out = j.get<int64_t>();
    return true;
  }
  return false;
}

bool is_int(const json& j) { return j.is_number_integer(); }  // excludes booleans and floats

// A JSON number (integer or float, not a boolean) as a double; false for other types.
bool as_number(const json& j, double& out) {
  if (j.is_number_unsigned()) out = static_cast<double>(j.get<uint64_t>());
  else if (j.is_number_integer()) out = static_cast<double>(j.get<int64_t>());
  else if (j.is_number_float()) out = j.get<double>();
  else return false;
  return true;
}

const json* get(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::set<std::string> keys_of(const json& obj) {
  std::set<std::string> s;
  for (auto it = obj.begin(); it != obj.end(); ++it) s.insert(it.key());
  return s;
}

std::string keys_str(const std::set<std::string>& s) {
  std::string r = "[";
  bool first = true;
  for (const auto& k : s) {
    r += (first ? "" : ", ") + q(k);
    first = false;
  }
  return r + "]";
}

// Upper bound of the JSON nesting depth (brackets inside strings count too, like format.py).
int nesting(const uint8_t* p, size_t n) {
  int64_t depth = 0, best = 0;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == '[' || p[i] == '{') best = std::max(best, ++depth);
    else if (p[i] == ']' || p[i] == '}') --depth;
  }
  return static_cast<int>(std::min<int64_t>(best, 1 << 30));
}

json parse_json(const uint8_t* p, size_t n, const std::string& what) {
  const int depth = nesting(p, n);
  if (depth > kMaxJsonDepth)
    fail(what + ": JSON nested " + std::to_string(depth) + " levels deep (limit " +
         std::to_string(kMaxJsonDepth) + ")");
  try {
    // strict: one document and nothing but whitespace after it; no comments; invalid UTF-8,
    // NaN / Infinity and number overflow are parse errors
    return json::parse(p, p + n, nullptr, true, false);
  } catch (const json::exception& e) {
    // the parser quotes the offending bytes, which may be anything: keep the message printable
    std::string msg;
    for (const char* c = e.what(); *c; ++c) {
      const auto b = static_cast<unsigned char>(*c);
      if (b >= 0x20 && b < 0x7f) {
        msg += *c;
      } else {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", b);
        msg += hex;
      }
    }
    fail(what + ": malformed JSON (" + msg + ")");
  }
}

json parse_json(const std::string& s, const std::string& what) {
  return parse_json(reinterpret_cast<const uint8_t*>(s.data()), s.size(), what);
}

// ------------------------------------------------------------------------------- graph checks

struct OpJson {
  std::string name, type;
  OpType t{};
  std::vector<std::string> inputs;
  std::string output;
  json attrs;
  std::map<std::string, std::string> tensors;  // role -> tensor name
};

using Spec = std::map<std::string, std::pair<DType, std::vector<int64_t>>>;

struct OpTypeInfo {
  const char* name;
  OpType type;
  int arity;
};
const OpTypeInfo kOpTypes[] = {
    {"add", OpType::add, 2},
    {"avgpool2d", OpType::avgpool2d, 1},
    {"bconv2d", OpType::bconv2d, 1},
    {"bdense", OpType::bdense, 1},
    {"bitpack", OpType::bitpack, 1},
    {"clamp_f32", OpType::clamp_f32, 1},
    {"conv1x1_f32", OpType::conv1x1_f32, 1},
    {"conv2d_i8", OpType::conv2d_i8, 1},
    {"conv2d_u8", OpType::conv2d_u8, 1},
    {"dense_f32", OpType::dense_f32, 1},
    {"dequantize", OpType::dequantize, 1},
    {"flatten", OpType::flatten, 1},
    {"global_avgpool", OpType::global_avgpool, 1},
    {"maxpool2d", OpType::maxpool2d, 1},
};

const OpTypeInfo* find_type(const std::string& s) {
  for (const auto& t : kOpTypes)
    if (s == t.name) return &t;
  return nullptr;
}

int arity(OpType t) {
  for (const auto& i : kOpTypes)
    if (i.type == t) return i.arity;
  return 1;
}

std::string known_types() {
  std::string r = "[";
  for (size_t i = 0; i < sizeof(kOpTypes) / sizeof(kOpTypes[0]); ++i)
    r += (i ? ", " : "") + q(kOpTypes[i].name);
  return r + "]";
}

int64_t num_words(int64_t c) { return (c + 63) / 64; }

// Checks one op's attributes against its inputs (graph.py SPECS), fills `op`, returns the
// output value and the tensor spec.
class OpChecker {
 public:
  OpChecker(const OpJson& j, Op& op) : j_(j), op_(op) {}

  [[noreturn]] void bad(const std::string& msg) const {
    fail("op " + q(j_.name) + " (" + j_.type + "): " + msg);
  }

  const json* attr(const char* key) const { return get(j_.attrs, key); }

  int64_t integer(const char* key, int64_t lo, int64_t hi) const {
    const json* v = attr(key);
    int64_t x = 0;
    if (!v || !is_int(*v)) bad(std::string("attribute ") + q(key) + " must be an integer, got " + (v ? repr(*v) : "None"));
    if (!as_int(*v, x) || x < lo || x > hi)
      bad(std::string("attribute ") + q(key) + " = " + repr(*v) + " outside [" + std::to_string(lo) + ", " +
          std::to_string(hi) + "]");
    return x;
  }

  std::pair<int64_t, int64_t> pair(const char* key, int64_t lo, int64_t hi = kMaxDim) const {
    const json* v = attr(key);
    if (!v || !v->is_array() || v->size() != 2 || !is_int((*v)[0]) || !is_int((*v)[1]))
      bad(std::string("attribute ") + q(key) + " must be a list of two integers, got " + (v ? repr(*v) : "None"));
    int64_t a = 0, b = 0;
    if (!as_int((*v)[0], a) || !as_int((*v)[1], b) || a < lo || a > hi || b < lo || b > hi)
      bad(std::string("attribute ") + q(key) + " = " + repr(*v) + " outside [" + std::to_string(lo) + ", " +
          std::to_string(hi) + "]");
    return {a, b};
  }

  double number(const char* key) const {
    const json* v = attr(key);
    double x = 0;
    if (!v || !as_number(*v, x) || !std::isfinite(x))
      bad(std::string("attribute ") + q(key) + " must be a finite number, got " + (v ? repr(*v) : "None"));
    return x;
  }

  bool boolean(const char* key, bool absent_ok, bool dflt) const {
    const json* v = attr(key);
    if (!v && absent_ok) return dflt;
    if (!v || !v->is_boolean()) bad(std::string("attribute ") + q(key) + " must be true or false, got " + (v ? repr(*v) : "None"));
    return v->get<bool>();
  }

  bool has_role(const char* r) const { return j_.tensors.count(r) != 0; }

  std::vector<int64_t> spatial(const Value& x) const {
    if (x.shape.size() != 3)
      bad("input must be an NHWC feature map [H, W, C], got shape " + list_str(x.shape));
    return x.shape;
  }

  // (output shape, (kh, kw, cin, cout)) of a convolution (graph.py _conv_geometry)
  std::vector<int64_t> conv_geometry(const Value& x) {
    auto s = spatial(x);
    const int64_t h = s[0], w = s[1], cin = s[2];
    if (integer("in_channels", 1, kMaxDim) != cin)
      bad("attribute in_channels = " + repr(*attr("in_channels")) + " but the input has " + std::to_string(cin) + " channels");
    op_.in_channels = cin;
    op_.out_channels = integer("out_channels", 1, kMaxDim);
    auto k = pair("kernel", 1), st = pair("stride", 1), p = pair("padding", 0);
    if (p.first >= k.first || p.second >= k.second)
      bad("padding " + list_str({p.first, p.second}) + " must be smaller than the kernel " + list_str({k.first, k.second}));
    const int64_t oh = conv_out(h, k.first, st.first, p.first, false);
    const int64_t ow = conv_out(w, k.second, st.second, p.second, false);
    if (oh < 1 || ow < 1)
      bad("kernel " + list_str({k.first, k.second}) + " with padding " + list_str({p.first, p.second}) +
          " does not fit the input " + std::to_string(h) + "x" + std::to_string(w));
    op_.kh = int(k.first); op_.kw = int(k.second); op_.sh = int(st.first); op_.sw = int(st.second);
    op_.ph = int(p.first); op_.pw = int(p.second);
    return {oh, ow, op_.out_channels};
  }

  static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

  static int64_t conv_out(int64_t size, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
    if (!ceil_mode) return floordiv(size + 2 * pad - k, stride) + 1;
    const int64_t out = -floordiv(-(size + 2 * pad - k), stride) + 1;
    return (out - 1) * stride >= size + pad ? out - 1 : out;
  }

  void stage(int64_t cout, Spec& tens, Value& out) {
    const json* v = attr("output");
    const std::string s = v && v->is_string() ? v->get<std::string>() : "";
    if (s == "bits") {
      op_.stage = Stage::bits;
      tens["threshold"] = {DType::i32, {cout}};
      tens["direction"] = {DType::i8, {cout}};
      out.kind = Kind::bits;
    } else if (s == "int8") {
      op_.stage = Stage::int8;
      op_.shift = int(integer("shift", 1, 31));
      const double scale = number("out_scale");
      if (!(scale > 0)) bad("attribute 'out_scale' must be > 0, got " + repr(*attr("out_scale")));
      op_.out_scale = scale;
      tens["multiplier"] = {DType::i32, {cout}};
      tens["bias"] = {DType::i32, {cout}};
      out.kind = Kind::int8;
      out.has_scale = true;
      out.scale = scale;
    } else if (s == "f32") {
      op_.stage = Stage::f32;
      tens["scale"] = {DType::f32, {cout}};
      tens["bias"] = {DType::f32, {cout}};
      out.kind = Kind::f32;
    } else {
      bad("attribute 'output' must be one of ['bits', 'int8', 'f32'], got " + (v ? repr(*v) : "None"));
    }
  }

  int64_t accumulator(int64_t k, const char* what) {
    const bool masked = has_role("weight_mask") || has_role("weight_word_mask");
    const int64_t bound = integer("accumulator_bound", masked ? 0 : 1, kMaxElements);
    if (masked && bound > k)
      bad("accumulator_bound = " + std::to_string(bound) + " exceeds " + what + " = " + std::to_string(k));
    if (!masked && bound != k)
      bad("accumulator_bound = " + std::to_string(bound) + " but " + what + " = " + std::to_string(k));
    const json* b = attr("accumulator_bits");
    int64_t bits = 0;
    if (!b || !is_int(*b) || !as_int(*b, bits) || (bits != 16 && bits != 32))
      bad("attribute 'accumulator_bits' must be one of [16, 32], got " + (b ? repr(*b) : "None"));
    if (bits == 16 && bound > kInt16MaxK)
      bad("accumulator_bits = 16 cannot hold a dot product over K = " + std::to_string(bound) + " > " +
          std::to_string(kInt16MaxK) + " bits");
    op_.accumulator_bound = bound;
    op_.accumulator_bits = int(bits);
    return bound;
  }

  void weight_spec(Spec& tens, const std::vector<int64_t>& shape, int64_t k) {
    const int64_t cout = shape[0];
    const bool full = has_role("weight_mask"), word = has_role("weight_word_mask");
    if (full && word)
      bad("has both 'weight_mask' and 'weight_word_mask': a pruned op carries exactly one mask");
    if (full) tens["weight_mask"] = {DType::u64, shape};
    else if (word) {
      std::vector<int64_t> rest(shape.begin() + 1, shape.end());
      tens["weight_word_mask"] = {DType::u64, {cout, num_words(prod_capped(rest))}};
    }
    if (has_role("weight_kept")) {
      if (has_role("weight")) bad("has both 'weight' and 'weight_kept': the weights are stored once");
      if (!full && !word)
        bad("'weight_kept' needs a mask ('weight_mask' or 'weight_word_mask') to place its weights");
      const int64_t hi = k > std::numeric_limits<int64_t>::max() / cout ? std::numeric_limits<int64_t>::max() : cout * k;
      const int64_t n = integer("kept_weights", 0, hi);
      op_.kept_weights = n;
      tens["weight_kept"] = {DType::u64, {num_words(n)}};
    } else {
      tens["weight"] = {DType::u64, shape};
    }
  }

  std::pair<int64_t, int64_t> dense_features(const Value& x, Kind kind, const char* kind_name) {
    if (x.kind != kind || x.shape.size() != 1)
      bad(std::string("input must be flat ") + kind_name + " [C], got " + kind_name_of(x) + " " + list_str(x.shape));
    const int64_t cin = x.shape[0];
    if (integer("in_features", 1, kMaxElements) != cin)
      bad("attribute in_features = " + repr(*attr("in_features")) + " but the input has " + std::to_string(cin));
    return {cin, integer("out_features", 1, kMaxDim)};
  }

  static std::string kind_name_of(const Value& v) { return kind_name(v.kind); }

  Value pool_window(const Value& x) {
    auto s = spatial(x);
    auto k = pair("kernel", 1), st = pair("stride", 1), p = pair("padding", 0);
    if (2 * p.first > k.first || 2 * p.second > k.second)
      bad("padding " + list_str({p.first, p.second}) + " must be at most half the kernel " + list_str({k.first, k.second}));
    const bool ceil = boolean("ceil_mode", true, false);
    const int64_t oh = conv_out(s[0], k.first, st.first, p.first, ceil);
    const int64_t ow = conv_out(s[1], k.second, st.second, p.second, ceil);
    if (oh < 1 || ow < 1)
      bad("pooling window " + list_str({k.first, k.second}) + " does not fit the input " + std::to_string(s[0]) + "x" +
          std::to_string(s[1]));
    op_.kh = int(k.first); op_.kw = int(k.second); op_.sh = int(st.first); op_.sw = int(st.second);
    op_.ph = int(p.first); op_.pw = int(p.second); op_.ceil_mode = ceil;
    Value v = x;
    v.shape = {oh, ow, s[2]};
    return v;
  }

  // graph.py SPECS[type]
  Value check(const std::vector<const Value*>& xs, Spec& tens) {
    const Value& x = *xs[0];
    Value out;
    auto need = [&](bool ok, const std::string& what) {
      if (!ok) bad("input must be " + what + ", got " + kind_name(x.kind));
    };
    switch (op_.type) {
      case OpType::bconv2d: {
        need(x.kind == Kind::bits, "bits");
        out.shape = conv_geometry(x);
        const int64_t k = int64_t(op_.kh) * op_.kw * op_.in_channels;
        accumulator(k, "kh*kw*Cin");
        stage(op_.out_channels, tens, out);
        weight_spec(tens, {op_.out_channels, op_.kh, op_.kw, num_words(op_.in_channels)}, k);
        break;
      }
      case OpType::bdense: {
        auto [cin, cout] = dense_features(x, Kind::bits, "bits");
        op_.in_channels = cin; op_.out_channels = cout;
        accumulator(cin, "in_features");
        stage(cout, tens, out);
        weight_spec(tens, {cout, num_words(cin)}, cin);
        out.shape = {cout};
        break;
      }
      case OpType::conv2d_u8:
      case OpType::conv2d_i8: {
        if (op_.type == OpType::conv2d_u8) need(x.kind == Kind::u8, "the uint8 image");
        else need(x.kind == Kind::int8, "int8");
        out.shape = conv_geometry(x);
        stage(op_.out_channels, tens, out);
        tens["weight"] = {DType::i8, {op_.out_channels, op_.kh, op_.kw, op_.in_channels}};
        if (op_.type == OpType::conv2d_u8) tens["zero_point"] = {DType::i32, {op_.in_channels}};
        break;
      }
      case OpType::maxpool2d:
        need(x.kind == Kind::bits || x.kind == Kind::int8 || x.kind == Kind::f32, "bits, int8 or float32");
        out = pool_window(x);
        break;
      case OpType::flatten: {
        if (x.kind == Kind::u8) bad("cannot flatten the uint8 image");
        if (x.kind == Kind::bits && x.shape.size() == 3 && x.shape[0] * x.shape[1] != 1 && x.shape[2] % 64)
          bad("bits of shape " + list_str(x.shape) + " cannot be flattened (C % 64 != 0)");
        out = x;
        out.shape = {x.elements()};
        break;
      }
      case OpType::dense_f32: {
        auto [cin, cout] = dense_features(x, Kind::f32, "float32");
        op_.in_channels = cin; op_.out_channels = cout;
        out.kind = Kind::f32; out.shape = {cout};
        tens["weight"] = {DType::f32, {cout, cin}};
        tens["bias"] = {DType::f32, {cout}};
        break;
      }
      case OpType::clamp_f32: {
        need(x.kind == Kind::f32, "float32");
        const double lo = number("min"), hi = number("max");
        if (!(lo < hi)) bad("min " + repr(*attr("min")) + " must be smaller than max " + repr(*attr("max")));
        op_.min = lo; op_.max = hi;
        out.kind = Kind::f32; out.shape = x.shape;
        break;
      }
      case OpType::dequantize:
        need(x.kind == Kind::int8, "int8");
        out.kind = Kind::f32; out.shape = x.shape;
        break;
      case OpType::bitpack:
        need(x.kind == Kind::int8 || x.kind == Kind::f32, "int8 or float32");
        out.kind = Kind::bits; out.shape = x.shape;
        break;
      case OpType::conv1x1_f32: {
        need(x.kind == Kind::f32, "float32");
        auto s = spatial(x);
        if (integer("in_channels", 1, kMaxDim) != s[2])
          bad("attribute in_channels = " + repr(*attr("in_channels")) + " but the input has " + std::to_string(s[2]) + " channels");
        op_.in_channels = s[2];
        op_.out_channels = integer("out_channels", 1, kMaxDim);
        out.kind = Kind::f32; out.shape = {s[0], s[1], op_.out_channels};
        tens["weight"] = {DType::f32, {op_.out_channels, s[2]}};
        tens["bias"] = {DType::f32, {op_.out_channels}};
        break;
      }
      case OpType::avgpool2d: {
        need(x.kind == Kind::int8 || x.kind == Kind::f32, "int8 or float32");
        out = pool_window(x);
        const json* c = attr("count_include_pad");
        if (!c || !c->is_boolean()) bad("attribute 'count_include_pad' must be true or false");
        op_.count_include_pad = c->get<bool>();
        break;
      }
      case OpType::global_avgpool: {
        need(x.kind == Kind::int8 || x.kind == Kind::f32, "int8 or float32");
        auto s = spatial(x);
        out.kind = Kind::f32; out.shape = {s[2]};
        break;
      }
      case OpType::add: {
        const Value& b = *xs[1];
        if (x.kind != b.kind || (x.kind != Kind::int8 && x.kind != Kind::f32) || x.shape != b.shape)
          bad(std::string("inputs must be two int8 or two float32 values of one shape, got ") + kind_name(x.kind) + " " +
              list_str(x.shape) + " and " + kind_name(b.kind) + " " + list_str(b.shape));
        out.kind = x.kind; out.shape = x.shape;
        if (x.kind == Kind::int8) {
          op_.ma = int32_t(integer("ma", -(int64_t{1} << 31) + 1, (int64_t{1} << 31) - 1));
          op_.mb = int32_t(integer("mb", -(int64_t{1} << 31) + 1, (int64_t{1} << 31) - 1));
          op_.shift = int(integer("shift", 1, 31));
          const double scale = number("out_scale");
          if (!(scale > 0)) bad("attribute 'out_scale' must be > 0, got " + repr(*attr("out_scale")));
          op_.out_scale = scale;
          out.has_scale = true; out.scale = scale;
        }
        break;
      }
    }
    return out;
  }

 private:
  const OpJson& j_;
  Op& op_;
};

void check_value(const std::string& where, const Value& v) {
  if (v.shape.empty() || v.shape.size() > 3)
    fail(where + ": shape " + list_str(v.shape) + " must be 1 to 3 axes of 1.." + std::to_string(kMaxDim));
  for (int64_t d : v.shape)
    if (d < 1 || d > kMaxDim)
      fail(where + ": shape " + list_str(v.shape) + " must be 1 to 3 axes of 1.." + std::to_string(kMaxDim));
  if (prod_capped(v.shape) > kMaxElements) fail(where + ": shape " + list_str(v.shape) + " is too large");
}

Value value_from_json(const std::string& where, const std::string& name, const json& d) {
  bool ok = d.is_object() && d.contains("kind") && d.contains("shape");
  if (ok)
    for (auto it = d.begin(); it != d.end(); ++it)
      if (it.key() != "kind" && it.key() != "shape" && it.key() != "scale") ok = false;
  if (!ok) fail(where + ": must be an object with 'kind', 'shape' and optional 'scale'");
  const json& shape = d["shape"];
  if (!shape.is_array()) fail(where + ": shape must be a list");
  Value v;
  v.name = name;
  const json* sc = get(d, "scale");
  if (sc && !sc->is_null()) {
    double s = 0;
    if (!as_number(*sc, s) || !std::isfinite(s) || s <= 0)
      fail(where + ": scale must be a positive finite number, got " + repr(*sc));
    v.has_scale = true;
    v.scale = s;
  }
  const json& kind = d["kind"];
  const std::string k = kind.is_string() ? kind.get<std::string>() : "";
  if (k == "u8") v.kind = Kind::u8;
  else if (k == "bits") v.kind = Kind::bits;
  else if (k == "int8") v.kind = Kind::int8;
  else if (k == "f32") v.kind = Kind::f32;
  else fail(where + ": unknown value kind " + repr(kind) + " (known: ['u8', 'bits', 'int8', 'f32'])");
  std::vector<int64_t> dims;
  for (const auto& e : shape) {
    int64_t x = 0;
    if (!is_int(e) || !as_int(e, x) || x < 1 || x > kMaxDim)
      fail(where + ": shape " + repr(shape) + " must be 1 to 3 axes of 1.." + std::to_string(kMaxDim));
    dims.push_back(x);
  }
  v.shape = dims;
  check_value(where, v);
  return v;
}

OpJson op_from_json(size_t i, const json& d) {
  static const std::set<std::string> keys = {"attrs", "inputs", "name", "output", "tensors", "type"};
  const std::string where = "graph op #" + std::to_string(i);
  if (!d.is_object() || keys_of(d) != keys) fail(where + ": must be an object with exactly the keys " + keys_str(keys));
  if (!d["name"].is_string() || d["name"].get<std::string>().empty()) fail(where + ": name must be a non-empty string");
  OpJson o;
  o.name = d["name"].get<std::string>();
  const OpTypeInfo* t = d["type"].is_string() ? find_type(d["type"].get<std::string>()) : nullptr;
  if (!t)
    fail(where + " " + q(o.name) + ": unknown op type " + repr(d["type"]) + " (known: " + known_types() + ")");
  o.type = t->name;
  o.t = t->type;
  bool ok = d["inputs"].is_array() && d["output"].is_string();
  if (ok)
    for (const auto& s : d["inputs"]) ok = ok && s.is_string();
  if (!ok) fail(where + " " + q(o.name) + ": inputs must be a list of names and output a name");
  for (const auto& s : d["inputs"]) o.inputs.push_back(s.get<std::string>());
  o.output = d["output"].get<std::string>();
  if (!d["attrs"].is_object()) fail(where + " " + q(o.name) + ": attrs must be an object");
  o.attrs = d["attrs"];
  ok = d["tensors"].is_object();
  if (ok)
    for (auto it = d["tensors"].begin(); it != d["tensors"].end(); ++it) ok = ok && it.value().is_string();
  if (!ok) fail(where + " " + q(o.name) + ": tensors must map roles to tensor names");
  for (auto it = d["tensors"].begin(); it != d["tensors"].end(); ++it) o.tensors[it.key()] = it.value().get<std::string>();
  return o;
}

// ------------------------------------------------------------------------------- file checks

// Copies n bytes at offset `off` of the data section into dst (the data section is read only
// once every check before the contents has passed, straight into the tensors' own storage).
using ReadBody = std::function<void(int64_t off, int64_t n, uint8_t* dst)>;

struct Entry {
  DType dtype;
  std::vector<int64_t> shape;
  int64_t begin, end;
};

bool dtype_from(const std::string& s, DType& d) {
  if (s == "U8") d = DType::u8;
  else if (s == "I8") d = DType::i8;
  else if (s == "I32") d = DType::i32;
  else if (s == "U64") d = DType::u64;
  else if (s == "F32") d = DType::f32;
  else return false;
  return true;
}

std::map<std::string, Entry> tensor_entries(const json& header, int64_t body_len) {
  static const std::set<std::string> keys = {"data_offsets", "dtype", "shape"};
  std::map<std::string, Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& e = it.value();
    if (name == "__metadata__") continue;
    if (!e.is_object() || keys_of(e) != keys)
      fail("tensor " + q(name) + ": entry must have exactly dtype, shape, data_offsets");
    Entry en{};
    if (!e["dtype"].is_string() || !dtype_from(e["dtype"].get<std::string>(), en.dtype))
      fail("tensor " + q(name) + ": dtype " + repr(e["dtype"]) + " not supported (known: ['F32', 'I32', 'I8', 'U64', 'U8'])");
    const json& shape = e["shape"];
    bool ok = shape.is_array() && shape.size() <= 8;
    if (ok)
      for (const auto& s : shape) {
        int64_t x = 0;
        if (!is_int(s) || !as_int(s, x) || x < 0 || x >= (int64_t{1} << 40)) ok = false;
        else en.shape.push_back(x);
      }
    if (!ok) fail("tensor " + q(name) + ": shape " + repr(shape) + " is not a list of non-negative integers");
    const json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !is_int(off[0]) || !is_int(off[1]))
      fail("tensor " + q(name) + ": data_offsets must be two integers");
    int64_t b = 0, end = 0;
    if (!as_int(off[0], b) || !as_int(off[1], end) || !(0 <= b && b <= end && end <= body_len))
      fail("tensor " + q(name) + ": data_offsets " + repr(off) + " outside the " + std::to_string(body_len) +
           "-byte data section (file truncated?)");
    const int64_t nbytes = prod_capped(en.shape, std::numeric_limits<int64_t>::max() / 8) * dtype_size(en.dtype);
    if (nbytes != end - b)
      fail("tensor " + q(name) + ": " + e["dtype"].get<std::string>() + list_str(en.shape) + " needs " +
           std::to_string(nbytes) + " bytes, offsets span " + std::to_string(end - b));
    en.begin = b;
    en.end = end;
    entries[name] = en;
  }
  std::vector<std::pair<std::string, const Entry*>> order;
  for (const auto& kv : entries) order.emplace_back(kv.first, &kv.second);
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->begin, a.second->end) < std::tie(b.second->begin, b.second->end);
  });
  int64_t pos = 0;
  for (const auto& [name, e] : order) {
    if (e->begin < pos)
      fail("tensor " + q(name) + ": data overlaps the previous tensor (offset " + std::to_string(e->begin) + " < " +
           std::to_string(pos) + ")");
    if (e->begin > pos)
      fail("tensor " + q(name) + ": " + std::to_string(e->begin - pos) + " unaccounted bytes before it (offset " +
           std::to_string(e->begin) + ")");
    pos = e->end;
  }
  if (pos != body_len)
    fail("data section has " + std::to_string(body_len) + " bytes but the tensors cover " + std::to_string(pos));
  return entries;
}

std::shared_ptr<uint8_t> aligned_bytes(int64_t n) {
  const size_t size = static_cast<size_t>(std::max<int64_t>(n, 1) + 63) / 64 * 64;
  void* p = ::operator new(size, std::align_val_t(64));
  std::memset(p, 0, size);
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p),
                                  [](uint8_t* q) { ::operator delete(q, std::align_val_t(64)); });
}

template <class T>
T read_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // little-endian host (x86-64, AArch64)
  return v;
}

// ------------------------------------------------------------------------------- contents

int popcount64(uint64_t x) { return __builtin_popcountll(x); }

struct Contents {
  const Op& op;
  [[noreturn]] void bad(const std::string& msg) const {
    fail("op " + q(op.name) + " (" + op_type_name(op.type) + "): " + msg);
  }
};

// The full mask of a compact weight_word_mask (bits.unpack_word_mask) and its per-channel kept
// counts (bits.word_mask_kept_counts).
void expand_word_mask(const Contents& c, const Tensor& wm, int64_t cout, int64_t per, int64_t w64, int64_t cin,
                      std::vector<uint64_t>& mask, std::vector<int64_t>& counts) {
  const int64_t row_words = num_words(per);
  const uint64_t* m = wm.as<uint64_t>();
  const int64_t rem = per % 64;
  if (rem) {
    int64_t rows = 0;
    for (int64_t o = 0; o < cout; ++o)
      if (m[o * row_words + row_words - 1] >> rem) ++rows;
    if (rows)
      c.bad("weight_word_mask has non-zero padding bits (bits " + std::to_string(per) + ".. of a row) in " +
            std::to_string(rows) + " output channel(s)");
  }
  std::vector<uint64_t> ones(static_cast<size_t>(w64), ~uint64_t{0});
  if (cin % 64) ones.back() = (uint64_t{1} << (cin % 64)) - 1;
  mask.assign(static_cast<size_t>(cout * per), 0);
  counts.assign(static_cast<size_t>(cout), 0);
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t j = 0; j < per; ++j)
      if ((m[o * row_words + j / 64] >> (j % 64)) & 1) {
        const uint64_t w = ones[static_cast<size_t>(j % w64)];
        mask[static_cast<size_t>(o * per + j)] = w;
        counts[static_cast<size_t>(o)] += popcount64(w);
      }
}

// bits.unpack_kept: the kept weight bits, in order, deposited at the mask's 1 bits.
std::vector<uint64_t> unpack_kept(const uint64_t* seq, const uint64_t* mask, size_t words) {
  std::vector<uint64_t> out(words, 0);
  uint64_t pos = 0;
  for (size_t i = 0; i < words; ++i) {
    uint64_t m = mask[i];
    if (!m) continue;
    const int cnt = popcount64(m);
    // the next cnt (<= 64) bits of the sequence
    const uint64_t word = pos / 64, bit = pos % 64;
    uint64_t bits = seq[word] >> bit;
    if (bit && bit + cnt > 64) bits |= seq[word + 1] << (64 - bit);
    uint64_t r = 0;
    while (m) {
      const uint64_t low = m & (~m + 1);
      if (bits & 1) r |= low;
      bits >>= 1;
      m &= m - 1;
    }
    out[i] = r;
    pos += static_cast<uint64_t>(cnt);
  }
  return out;
}

void check_binary(const Contents& c, Op& op, const std::vector<Tensor>& all) {
  const int64_t cin = op.in_channels, cout = op.out_channels, w64 = num_words(cin);
  const int64_t taps = op.type == OpType::bconv2d ? int64_t(op.kh) * op.kw : 1;
  const int64_t per = taps * w64, rows = cout * taps;
  const int64_t rem = cin % 64;
  const uint64_t pad_mask = rem ? ~((uint64_t{1} << rem) - 1) : 0;
  const Tensor* full = op.tensor(all, "weight_mask");
  const Tensor* word = op.tensor(all, "weight_word_mask");
  const Tensor* kept = op.tensor(all, "weight_kept");
  std::vector<uint64_t> expanded;  // a compact mask, expanded
  const uint64_t* mask = nullptr;
  const size_t words = static_cast<size_t>(cout * per);
  std::vector<int64_t> counts;
  const char* role = nullptr;
  // tensor data is shared, not copied: the model keeps the file's bytes
  auto share = [](const Tensor& t) { return std::shared_ptr<const uint64_t>(t.storage, t.as<uint64_t>()); };
  if (full) {
    role = "weight_mask";
    const uint64_t* m = full->as<uint64_t>();
    if (rem)
      for (int64_t r = 0; r < rows; ++r)
        if (m[r * w64 + w64 - 1] & pad_mask)
          c.bad("weight_mask has non-zero channel padding bits (channels " + std::to_string(cin) + "..)");
    mask = m;
    op.mask = share(*full);
    counts.assign(static_cast<size_t>(cout), 0);
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t j = 0; j < per; ++j) counts[size_t(o)] += popcount64(m[o * per + j]);
  } else if (word) {
    role = "weight_word_mask";
    expand_word_mask(c, *word, cout, per, w64, cin, expanded, counts);
    auto owned = std::make_shared<std::vector<uint64_t>>(std::move(expanded));
    mask = owned->data();
    op.mask = std::shared_ptr<const uint64_t>(owned, owned->data());
  }
  if (kept) {
    int64_t n = 0;
    for (int64_t v : counts) n += v;
    if (op.kept_weights != n)
      c.bad("kept_weights = " + std::to_string(op.kept_weights) + " but " + role + " keeps " + std::to_string(n) +
            " weights");
    const uint64_t* wk = kept->as<uint64_t>();
    if (n % 64 && (wk[num_words(n) - 1] >> (n % 64)))
      c.bad("weight_kept has non-zero padding bits (bits " + std::to_string(n % 64) + ".. of its last word)");
    auto owned = std::make_shared<std::vector<uint64_t>>(unpack_kept(wk, mask, words));
    op.weight = std::shared_ptr<const uint64_t>(owned, owned->data());
  } else {
    const uint64_t* wp = op.tensor(all, "weight")->as<uint64_t>();
    if (rem)
      for (int64_t r = 0; r < rows; ++r)
        if (wp[r * w64 + w64 - 1] & pad_mask)
          c.bad("packed weights have non-zero channel padding bits (channels " + std::to_string(cin) + "..)");
    if (role) {
      int64_t n = 0;
      for (size_t i = 0; i < words; ++i) n += (wp[i] & ~mask[i]) != 0;
      if (n)
        c.bad("weight bits under pruned positions must be 0 (canonical form): " + std::to_string(n) +
              " packed words have a weight bit set where " + role + " is 0");
    }
    op.weight = share(*op.tensor(all, "weight"));
  }
  if (role) {
    int64_t bound = 0;
    for (int64_t v : counts) bound = std::max(bound, v);
    if (op.accumulator_bound != bound)
      c.bad("accumulator_bound = " + std::to_string(op.accumulator_bound) + " but " + role + " keeps at most " +
            std::to_string(bound) + " weights of one output channel");
  }
}

void check_contents(Op& op, const std::vector<Tensor>& all) {
  Contents c{op};
  if (const Tensor* d = op.tensor(all, "direction")) {
    const int8_t* p = d->as<int8_t>();
    for (int64_t i = 0; i < d->nbytes; ++i)
      if (p[i] != 1 && p[i] != -1) c.bad("direction values must be +1 or -1");
  }
  for (const char* role : {"scale", "bias", "weight"}) {
    const Tensor* t = op.tensor(all, role);
    if (t && t->dtype == DType::f32) {
      const float* p = t->as<float>();
      for (int64_t i = 0; i < t->nbytes / 4; ++i)
        if (!std::isfinite(p[i])) c.bad(std::string("tensor ") + q(role) + " has non-finite values");
    }
  }
  if (const Tensor* z = op.tensor(all, "zero_point")) {
    const int32_t* p = z->as<int32_t>();
    for (int64_t i = 0; i < z->nbytes / 4; ++i)
      if (p[i] < 0 || p[i] > 255) c.bad("zero_point values must lie in [0, 255]");
  }
  if (op.type == OpType::conv2d_u8 || op.type == OpType::conv2d_i8) {
    const Tensor* w = op.tensor(all, "weight");
    const int8_t* p = w->as<int8_t>();
    for (int64_t i = 0; i < w->nbytes; ++i)
      if (p[i] == -128) c.bad("int8 weights must lie on the symmetric grid [-127, 127]");
  }
  if (op.type == OpType::bconv2d || op.type == OpType::bdense) check_binary(c, op, all);
}

// ------------------------------------------------------------------------------- metadata

struct Docs {
  json producer, input, output, graph;
};

Docs metadata(const json& meta, Model& m) {
  const json* fmt = get(meta, "format");
  if (!fmt || !fmt->is_string() || fmt->get<std::string>() != "onebit")
    fail("metadata 'format' is " + (fmt ? repr(*fmt) : std::string("None")) + ", expected 'onebit'");
  for (const char* k : {"format", "format_version", "producer", "input", "output", "graph"}) {
    const json* v = get(meta, k);
    if (!v || !v->is_string()) fail(std::string("metadata key ") + q(k) + " missing or not a string");
  }
  const std::string v = meta["format_version"].get<std::string>();
  bool digits = !v.empty();
  int64_t version = 0;
  for (char ch : v) {
    digits = digits && ch >= '0' && ch <= '9';
    if (digits) version = std::min<int64_t>(version * 10 + (ch - '0'), int64_t{1} << 40);
  }
  if (!digits || version != kFormatVersion)
    fail("format_version " + q(v) + " is not supported (this onebit reads [" + std::to_string(kFormatVersion) + "])");
  m.format_version = kFormatVersion;
  Docs d;
  json* slots[] = {&d.producer, &d.input, &d.output, &d.graph};
  const char* names[] = {"producer", "input", "output", "graph"};
  for (int i = 0; i < 4; ++i) {
    *slots[i] = parse_json(meta[names[i]].get<std::string>(), std::string("metadata ") + q(names[i]));
    if (!slots[i]->is_object()) fail(std::string("metadata ") + q(names[i]) + " must be a JSON object");
  }
  const json* ob = get(d.producer, "onebit");
  if (!ob || !ob->is_string()) fail("metadata 'producer' must name the onebit version");
  m.producer_json = meta["producer"].get<std::string>();
  // input spec
  const json& in = d.input;
  const json* name = get(in, "name");
  if (!name || !name->is_string()) fail("metadata 'input' must have a name");
  const json* dt = get(in, "dtype");
  const json* lay = get(in, "layout");
  if (!dt || !lay || *dt != "uint8" || *lay != "NHWC") fail("metadata 'input' must describe a uint8 NHWC image");
  const json* shape = get(in, "shape");
  int64_t hwc[3] = {0, 0, 0};
  bool ok = shape && shape->is_array() && shape->size() == 3;
  for (size_t i = 0; ok && i < 3; ++i) ok = is_int((*shape)[i]) && as_int((*shape)[i], hwc[i]);
  if (!ok) fail("metadata 'input' shape must be [H, W, C]");
  for (const char* k : {"mean", "std"}) {
    const json* vals = get(in, k);
    bool good = vals && vals->is_array() && static_cast<int64_t>(vals->size()) == hwc[2];
    std::vector<double> xs;
    for (size_t i = 0; good && i < vals->size(); ++i) {
      double x = 0;
      good = as_number((*vals)[i], x) && std::isfinite(x);
      xs.push_back(x);
    }
    if (!good)
      fail(std::string("metadata 'input' ") + k + " must be " + std::to_string(hwc[2]) +
           " finite numbers (one per channel)");
    (std::string(k) == "mean" ? m.mean : m.std) = xs;
  }
  for (double s : m.std)
    if (!(s > 0)) fail("metadata 'input' std must be positive");
  m.input_name = name->get<std::string>();
  m.in_h = hwc[0]; m.in_w = hwc[1]; m.in_c = hwc[2];
  const json& out = d.output;
  const json* oname = get(out, "name");
  const json* odt = get(out, "dtype");
  if (!oname || !oname->is_string() || !odt || *odt != "float32")
    fail("metadata 'output' must have a name and dtype 'float32'");
  if (const json* cn = get(out, "class_names"); cn && cn->is_array())
    for (const auto& s : *cn) m.class_names.push_back(s.is_string() ? s.get<std::string>() : repr(s));
  return d;
}

void graph(const json& g, const Docs& docs, Model& m, std::vector<OpJson>& ops_json) {
  static const std::set<std::string> keys = {"input", "ops", "output", "values"};
  if (keys_of(g) != keys)
    fail("graph must have exactly the keys " + keys_str(keys) + ", got " + keys_str(keys_of(g)));
  if (!g["ops"].is_array() || g["ops"].empty()) fail("graph 'ops' must be a non-empty list");
  if (!g["values"].is_object()) fail("graph 'values' must be an object");
  std::map<std::string, Value> declared;
  for (auto it = g["values"].begin(); it != g["values"].end(); ++it)
    declared[it.key()] = value_from_json("value " + q(it.key()), it.key(), it.value());
  const json& gin = g["input"];
  if (!gin.is_string() || !declared.count(gin.get<std::string>()))
    fail("graph input " + repr(gin) + " is not a declared value");
  const std::string input_name = gin.get<std::string>();
  if (input_name != m.input_name)
    fail("graph input " + q(input_name) + " differs from metadata input " + q(m.input_name));
  const Value& in_val = declared[input_name];
  if (in_val.shape != std::vector<int64_t>{m.in_h, m.in_w, m.in_c})
    fail("graph input shape " + list_str(in_val.shape) + " differs from metadata " + list_str({m.in_h, m.in_w, m.in_c}));
  for (size_t i = 0; i < g["ops"].size(); ++i) ops_json.push_back(op_from_json(i, g["ops"][i]));

  // infer (graph.py infer)
  if (in_val.kind != Kind::u8 || in_val.shape.size() != 3)
    fail(std::string("graph input must be a uint8 [H, W, C] image, got ") + kind_name(in_val.kind) + " " +
         list_str(in_val.shape));
  std::map<std::string, int> index;
  m.values.push_back(in_val);
  index[input_name] = 0;
  std::set<std::string> names;
  for (const OpJson& oj : ops_json) {
    Op op;
    op.name = oj.name;
    op.type = oj.t;
    OpChecker ck(oj, op);
    if (!names.insert(oj.name).second) ck.bad("duplicate op name");
    if (static_cast<int>(oj.inputs.size()) != arity(oj.t))
      ck.bad("takes " + std::to_string(arity(oj.t)) + " input(s), got " + std::to_string(oj.inputs.size()));
    std::vector<const Value*> xs;
    for (const auto& i : oj.inputs) {
      auto it = index.find(i);
      if (it == index.end()) ck.bad("input " + q(i) + " is not defined before this op");
      op.inputs.push_back(it->second);
    }
    for (int i : op.inputs) xs.push_back(&m.values[static_cast<size_t>(i)]);
    if (index.count(oj.output)) ck.bad("output " + q(oj.output) + " is already defined");
    Spec tens;
    Value out = ck.check(xs, tens);
    out.name = oj.output;
    std::set<std::string> have, want;
    for (const auto& kv : oj.tensors) have.insert(kv.first);
    for (const auto& kv : tens) want.insert(kv.first);
    if (have != want) ck.bad("tensor roles " + keys_str(have) + " do not match the required " + keys_str(want));
    check_value("op " + q(oj.name) + " output", out);
    auto dit = declared.find(oj.output);
    if (dit == declared.end()) ck.bad("output " + q(oj.output) + " is not declared in 'values'");
    const Value& d = dit->second;
    if (d.kind != out.kind || d.shape != out.shape || d.has_scale != out.has_scale ||
        (d.has_scale && d.scale != out.scale))
      ck.bad("declared value " + q(oj.output) + " = " + kind_name(d.kind) + " " + list_str(d.shape) +
             " but the op produces " + kind_name(out.kind) + " " + list_str(out.shape));
    index[oj.output] = static_cast<int>(m.values.size());
    op.output = static_cast<int>(m.values.size());
    m.values.push_back(out);
    // the spec's tensors, recorded by role (resolved against the file's entries later)
    for (const auto& kv : tens) op.tensors[kv.first] = -1;
    m.ops.push_back(std::move(op));
  }
  int64_t total = 0;
  for (const auto& v : m.values) total += prod_capped(v.shape);
  if (total > kMaxTotalElements)
    fail("graph: its values hold " + std::to_string(total) + " elements per sample (limit " +
         std::to_string(kMaxTotalElements) + ")");
  std::set<std::string> used;
  for (const auto& oj : ops_json)
    for (const auto& i : oj.inputs) used.insert(i);
  for (size_t i = 0; i + 1 < ops_json.size(); ++i)
    if (!used.count(ops_json[i].output))
      fail("op " + q(ops_json[i].name) + " (" + ops_json[i].type + "): output " + q(ops_json[i].output) +
           " is never used");
  std::vector<std::string> extra;
  for (const auto& kv : declared)
    if (!index.count(kv.first)) extra.push_back(q(kv.first));
  if (!extra.empty()) {
    std::string s;
    for (size_t i = 0; i < extra.size(); ++i) s += (i ? ", " : "") + extra[i];
    fail("graph: declared values [" + s + "] are not produced by any op");
  }
  // output
  const json& gout = g["output"];
  const json& mout = docs.output["name"];
  const std::string last = ops_json.back().output;
  if (!gout.is_string() || gout.get<std::string>() != last || mout.get<std::string>() != gout.get<std::string>())
    fail("graph output " + repr(gout) + " must be the last op's output " + q(last) + " and the metadata output " +
         repr(mout));
  const Value& ov = m.values.back();
  if (ov.kind != Kind::f32 || ov.shape.size() != 1)
    fail(std::string("graph output must be flat float32 logits, got ") + kind_name(ov.kind) + " " + list_str(ov.shape));
  const json* oshape = get(docs.output, "shape");
  bool same = oshape && oshape->is_array() && oshape->size() == 1 && is_int((*oshape)[0]);
  int64_t oc = 0;
  same = same && as_int((*oshape)[0], oc) && oc == ov.shape[0];
  if (!same)
    fail("metadata output shape " + (oshape ? repr(*oshape) : std::string("None")) + " differs from the graph's " +
         list_str(ov.shape));
  m.output_name = last;
  m.num_classes = ov.shape[0];
}

// Resolves every op's tensors against the file's entries, copies the data, checks contents.
void tensors(Model& m, const std::vector<OpJson>& ops_json, const std::map<std::string, Entry>& entries,
             const ReadBody& read_body) {
  std::map<std::string, std::string> used;  // tensor name -> op name
  for (size_t i = 0; i < m.ops.size(); ++i) {
    Op& op = m.ops[i];
    const OpJson& oj = ops_json[i];
    // recompute the spec (the checker is deterministic and already passed)
    Op scratch;
    scratch.name = op.name;
    scratch.type = op.type;
    OpChecker ck(oj, scratch);
    std::vector<const Value*> xs;
    for (int v : op.inputs) xs.push_back(&m.values[static_cast<size_t>(v)]);
    Spec spec;
    ck.check(xs, spec);
    for (const auto& [role, tname] : oj.tensors) {
      auto u = used.find(tname);
      if (u != used.end()) ck.bad("tensor " + q(tname) + " is already used by op " + q(u->second));
      used[tname] = op.name;
      auto e = entries.find(tname);
      if (e == entries.end()) ck.bad("tensor " + q(tname) + " (" + role + ") is missing from the file");
      const auto& [dt, shape] = spec.at(role);
      if (e->second.dtype != dt || e->second.shape != shape)
        ck.bad("tensor " + q(tname) + " (" + role + ") is " + dtype_name(e->second.dtype) + list_str(e->second.shape) +
               ", expected " + dtype_name(dt) + list_str(shape));
    }
  }
  std::vector<std::string> extra;
  for (const auto& kv : entries)
    if (!used.count(kv.first)) extra.push_back(q(kv.first));
  if (!extra.empty()) {
    std::string s;
    for (size_t i = 0; i < extra.size() && i < 5; ++i) s += (i ? ", " : "") + extra[i];
    fail("tensors [" + s + "] are not used by the graph");
  }
  // compact masks and kept-only weights expand at load: bounded by the file limit
  int64_t expanded = 0;
  for (const Op& op : m.ops) {
    if (op.type != OpType::bconv2d && op.type != OpType::bdense) continue;
    const int64_t words = op.out_channels * (op.type == OpType::bconv2d ? int64_t(op.kh) * op.kw : 1) *
                          num_words(op.in_channels);
    const int64_t forms = int64_t(op.tensors.count("weight_word_mask")) + int64_t(op.tensors.count("weight_kept"));
    expanded += 8 * words * forms;
    if (expanded > kMaxFileBytes) break;  // (and no overflow)
  }
  if (expanded > kMaxFileBytes)
    fail("compact masks and kept weights expand to " + std::to_string(expanded) + " bytes, more than the " +
         std::to_string(kMaxFileBytes) + "-byte file limit");
  std::map<std::string, int> tindex;
  for (const auto& [name, e] : entries) {
    Tensor t;
    t.name = name;
    t.dtype = e.dtype;
    t.shape = e.shape;
    t.nbytes = e.end - e.begin;
    t.storage = aligned_bytes(t.nbytes);
    if (t.nbytes) read_body(e.begin, t.nbytes, t.storage.get());
    tindex[name] = static_cast<int>(m.tensors.size());
    m.tensors.push_back(std::move(t));
  }
  for (size_t i = 0; i < m.ops.size(); ++i) {
    for (const auto& [role, tname] : ops_json[i].tensors) m.ops[i].tensors[role] = tindex.at(tname);
    check_contents(m.ops[i], m.tensors);
  }
}

}  // namespace

// ------------------------------------------------------------------------------- public

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::u8: return "u8";
    case Kind::bits: return "bits";
    case Kind::int8: return "int8";
    default: return "f32";
  }
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::u8: return "U8";
    case DType::i8: return "I8";
    case DType::i32: return "I32";
    case DType::u64: return "U64";
    default: return "F32";
  }
}

int64_t dtype_size(DType d) {
  switch (d) {
    case DType::u8:
    case DType::i8: return 1;
    case DType::u64: return 8;
    default: return 4;
  }
}

const char* op_type_name(OpType t) {
  for (const auto& i : kOpTypes)
    if (i.type == t) return i.name;
  return "?";
}

int64_t Value::elements() const { return prod_capped(shape); }

int64_t Value::sample_bytes() const {
  if (kind == Kind::bits) {
    std::vector<int64_t> s = shape;
    s.back() = num_words(s.back());
    return prod_capped(s) * 8;
  }
  return elements() * (kind == Kind::f32 ? 4 : 1);
}

const Tensor* Op::tensor(const std::vector<Tensor>& all, const char* role) const {
  auto it = tensors.find(role);
  if (it == tensors.end() || it->second < 0) return nullptr;
  return &all[static_cast<size_t>(it->second)];
}

int Model::value_index(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int>(i);
  return -1;
}

// Validates a file of `size` bytes whose first `prefix_len` bytes are at `prefix` (at least the
// 8 + N bytes of the length and the header whenever the file holds them) and reads its data
// section through `read_body`.
static std::shared_ptr<const Model> load_impl(const uint8_t* prefix, size_t prefix_len, size_t size,
                                              const ReadBody& read_body) {
  const uint8_t* data = prefix;
  if (size < 8)
    fail("file truncated: " + std::to_string(size) + " bytes, the header length alone takes 8");
  const uint64_t n = read_le<uint64_t>(data);
  if (n < 2 || n > static_cast<uint64_t>(kMaxHeaderBytes))
    fail("header length " + std::to_string(n) + " outside [2, " + std::to_string(kMaxHeaderBytes) +
         "]: not a model file");
  if (8 + n > size)
    fail("file truncated: header claims " + std::to_string(n) + " bytes but only " + std::to_string(size - 8) +
         " follow");
  if (prefix_len < 8 + n) throw IoError("model file: the header could not be read");
  const uint8_t* raw = data + 8;
  if (raw[0] != '{') fail("header does not start with '{': not a safetensors file");
  json header = parse_json(raw, static_cast<size_t>(n), "header");
  if (!header.is_object()) fail("header must be a JSON object");
  const json* meta = get(header, "__metadata__");
  if (!meta || !meta->is_object()) fail("header has no '__metadata__' object: not a onebit model file");
  auto m = std::make_shared<Model>();
  m->file_bytes = static_cast<int64_t>(size);
  const int64_t body_len = static_cast<int64_t>(size - 8 - n);
  Docs docs = metadata(*meta, *m);
  auto entries = tensor_entries(header, body_len);
  std::vector<OpJson> ops_json;
  graph(docs.graph, docs, *m, ops_json);
  tensors(*m, ops_json, entries, [&](int64_t off, int64_t len, uint8_t* dst) {
    read_body(static_cast<int64_t>(8 + n) + off, len, dst);
  });
  return m;
}

std::shared_ptr<const Model> load_model(const uint8_t* data, size_t size) {
  return load_impl(data, size, size, [&](int64_t off, int64_t len, uint8_t* dst) {
    std::memcpy(dst, data + off, static_cast<size_t>(len));
  });
}

std::shared_ptr<const Model> load_model_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw IoError("cannot open model file '" + path + "': " + std::strerror(errno));
  struct Closer {
    std::FILE* f;
    ~Closer() { std::fclose(f); }
  } closer{f};
  auto failed = [&](const char* what) { return IoError("cannot read model file '" + path + "': " + what); };
  if (std::fseek(f, 0, SEEK_END) != 0) throw failed("seek failed");
  const long size = std::ftell(f);
  if (size < 0) throw failed("size unknown");
  if (size > kMaxFileBytes)
    throw FormatError(path + ": file of " + std::to_string(size) + " bytes exceeds the " +
                      std::to_string(kMaxFileBytes) + "-byte limit");
  std::rewind(f);
  // the length field, then (when it is plausible) the header; the data section is read tensor
  // by tensor into the tensors' own storage once everything else is checked
  std::vector<uint8_t> prefix(static_cast<size_t>(std::min<long>(size, 8)));
  if (!prefix.empty() && std::fread(prefix.data(), 1, prefix.size(), f) != prefix.size()) throw failed("short read");
  if (size >= 8) {
    const uint64_t n = read_le<uint64_t>(prefix.data());
    if (n >= 2 && n <= static_cast<uint64_t>(kMaxHeaderBytes) && 8 + n <= static_cast<uint64_t>(size)) {
      prefix.resize(static_cast<size_t>(8 + n));
      if (std::fread(prefix.data() + 8, 1, static_cast<size_t>(n), f) != n) throw failed("short read");
    }
  }
  try {
    return load_impl(prefix.data(), prefix.size(), static_cast<size_t>(size),
                     [&](int64_t off, int64_t len, uint8_t* dst) {
                       if (std::fseek(f, off, SEEK_SET) != 0 ||
                           std::fread(dst, 1, static_cast<size_t>(len), f) != static_cast<size_t>(len))
                         throw failed("short read");
                     });
  } catch (const FormatError& e) {
    throw FormatError(path + ": " + e.what());
  }
}

}  // namespace onebit::rt
