// Graph checks of the loader (graph_check.h). Mirrors onebit/runtime/graph.py check by check.
#include "onebit/runtime/graph_check.h"

#include <set>

namespace onebit::rt {
namespace detail {

namespace {

struct OpTypeInfo {
  const char* name;
  OpType type;
  int arity;
};
const OpTypeInfo kOpTypes[] = {
    {"add", OpType::add, 2},
    {"affine_f32", OpType::affine_f32, 1},
    {"avgpool2d", OpType::avgpool2d, 1},
    {"bconv2d", OpType::bconv2d, 1},
    {"bconv2d_planes", OpType::bconv2d_planes, 1},
    {"bitplanes", OpType::bitplanes, 1},
    {"bdense", OpType::bdense, 1},
    {"bitpack", OpType::bitpack, 1},
    {"clamp_f32", OpType::clamp_f32, 1},
    {"concat", OpType::concat, 2},
    {"conv1x1_f32", OpType::conv1x1_f32, 1},
    {"conv2d_f32", OpType::conv2d_f32, 1},
    {"conv2d_i8", OpType::conv2d_i8, 1},
    {"conv2d_u8", OpType::conv2d_u8, 1},
    {"dense_f32", OpType::dense_f32, 1},
    {"dwconv2d_f32", OpType::dwconv2d_f32, 1},
    {"dwconv2d_i8", OpType::dwconv2d_i8, 1},
    {"dequantize", OpType::dequantize, 1},
    {"flatten", OpType::flatten, 1},
    {"global_avgpool", OpType::global_avgpool, 1},
    {"maxpool2d", OpType::maxpool2d, 1},
    {"mul_channels_f32", OpType::mul_channels_f32, 2},
    {"prelu_f32", OpType::prelu_f32, 1},
    {"sigmoid_f32", OpType::sigmoid_f32, 1},
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
    auto e = attr("padding_end") ? pair("padding_end", 0) : p;  // bottom / right (default: padding)
    if (e.first >= k.first || e.second >= k.second)
      bad("padding_end " + list_str({e.first, e.second}) + " must be smaller than the kernel " +
          list_str({k.first, k.second}));
    const int64_t oh = floordiv(h + p.first + e.first - k.first, st.first) + 1;
    const int64_t ow = floordiv(w + p.second + e.second - k.second, st.second) + 1;
    if (oh < 1 || ow < 1)
      bad("kernel " + list_str({k.first, k.second}) + " with padding " + list_str({p.first, p.second}) +
          " does not fit the input " + std::to_string(h) + "x" + std::to_string(w));
    op_.kh = int(k.first); op_.kw = int(k.second); op_.sh = int(st.first); op_.sw = int(st.second);
    op_.ph = int(p.first); op_.pw = int(p.second); op_.ph_end = int(e.first); op_.pw_end = int(e.second);
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
        op_.pad_value = attr("pad_value") ? int(integer("pad_value", 0, 1)) : 0;  // docs/format.md §3
        const int64_t k = int64_t(op_.kh) * op_.kw * op_.in_channels;
        accumulator(k, "kh*kw*Cin");
        stage(op_.out_channels, tens, out);
        weight_spec(tens, {op_.out_channels, op_.kh, op_.kw, num_words(op_.in_channels)}, k);
        break;
      }
      case OpType::bitplanes: {
        need(x.kind == Kind::u8, "the uint8 image");
        auto s = spatial(x);
        const json* v = attr("planes");
        bool ok = v && v->is_array() && !v->empty();
        if (ok)
          for (const auto& e : *v) ok = ok && is_int(e);
        if (!ok) bad("attribute 'planes' must be a non-empty list of plane ids, got " + (v ? repr(*v) : "None"));
        std::vector<int64_t> ids;
        bool in_range = true;
        for (const auto& e : *v) {
          int64_t id = 0;
          in_range = as_int(e, id) && id >= 0 && id < 8 * s[2] && in_range;
          ids.push_back(id);
        }
        if (!in_range)
          bad("plane ids " + repr(*v) + " outside [0, " + std::to_string(8 * s[2] - 1) + "] (a " + std::to_string(s[2]) +
              "-channel image has " + std::to_string(8 * s[2]) + " bit planes)");
        for (size_t i = 1; i < ids.size(); ++i)
          if (ids[i] <= ids[i - 1]) bad("plane ids " + repr(*v) + " must be strictly increasing");
        op_.planes.assign(ids.begin(), ids.end());
        op_.in_channels = s[2];
        op_.out_channels = static_cast<int64_t>(ids.size());
        out.kind = Kind::bits;
        out.shape = {s[0], s[1], op_.out_channels};
        break;
      }
      case OpType::bconv2d_planes: {
        need(x.kind == Kind::bits, "bits");
        out.shape = conv_geometry(x);
        op_.weight_bits = int(integer("weight_bits", 1, 8));
        const int64_t k = ((int64_t{1} << op_.weight_bits) - 1) * op_.kh * op_.kw * op_.in_channels;
        accumulator(k, "(2^weight_bits - 1)*kh*kw*Cin");
        stage(op_.out_channels, tens, out);
        const json* lay = attr("weight_layout");  // docs/format.md "Bit-plane input"
        const std::string layout = lay ? (lay->is_string() ? lay->get<std::string>() : "?") : "taps";
        if (layout != "taps" && layout != "window")
          bad("attribute 'weight_layout' must be 'taps' or 'window', got " + repr(*lay));
        op_.window_layout = layout == "window";
        if (op_.window_layout)
          tens["weight"] = {DType::u64, {op_.weight_bits, op_.out_channels, num_words(op_.kh * op_.kw * op_.in_channels)}};
        else
          tens["weight"] = {DType::u64, {op_.weight_bits, op_.out_channels, op_.kh, op_.kw, num_words(op_.in_channels)}};
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
      case OpType::dwconv2d_i8:
      case OpType::dwconv2d_f32: {
        const bool f32 = op_.type == OpType::dwconv2d_f32;
        if (f32) need(x.kind == Kind::f32, "float32");
        else need(x.kind == Kind::int8, "int8");
        out.shape = conv_geometry(x);
        if (op_.out_channels != op_.in_channels)
          bad("a depthwise convolution keeps the channels: out_channels = " + std::to_string(op_.out_channels) +
              " but in_channels = " + std::to_string(op_.in_channels));
        if (int64_t{op_.kh} * op_.kw * 128 * 128 > INT32_MAX)
          bad("kernel " + list_str({op_.kh, op_.kw}) + " can overflow the int32 accumulator (kh*kw*128*128 > 2^31 - 1)");
        if (f32) {
          out.kind = Kind::f32;
          tens["weight"] = {DType::f32, {op_.kh, op_.kw, op_.in_channels}};
          tens["bias"] = {DType::f32, {op_.in_channels}};
        } else {
          stage(op_.out_channels, tens, out);
          tens["weight"] = {DType::i8, {op_.kh, op_.kw, op_.in_channels}};
        }
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
        if (has_role("lower") || has_role("upper")) {  // per channel (the last axis): tensors, no attributes
          if (attr("min") || attr("max"))
            bad("per-channel bounds (tensors 'lower', 'upper') and the attributes 'min' / 'max' exclude each other");
          tens["lower"] = {DType::f32, {x.shape.back()}};
          tens["upper"] = {DType::f32, {x.shape.back()}};
        } else {
          const double lo = number("min"), hi = number("max");
          if (!(lo < hi)) bad("min " + repr(*attr("min")) + " must be smaller than max " + repr(*attr("max")));
          op_.min = lo; op_.max = hi;
        }
        out.kind = Kind::f32; out.shape = x.shape;
        break;
      }
      case OpType::affine_f32: {
        need(x.kind == Kind::f32, "float32");
        const int64_t c = x.shape.back();
        out.kind = Kind::f32; out.shape = x.shape;
        tens["scale"] = {DType::f32, {c}};
        tens["bias"] = {DType::f32, {c}};
        break;
      }
      case OpType::prelu_f32:
        need(x.kind == Kind::f32, "float32");
        out.kind = Kind::f32; out.shape = x.shape;
        tens["slope"] = {DType::f32, {x.shape.back()}};
        break;
      case OpType::sigmoid_f32:
        need(x.kind == Kind::f32, "float32");
        out.kind = Kind::f32; out.shape = x.shape;
        break;
      case OpType::mul_channels_f32: {
        const Value& g = *xs[1];
        if (x.kind != Kind::f32 || g.kind != Kind::f32 || g.shape.size() != 1 || g.shape[0] != x.shape.back())
          bad(std::string("inputs must be a float32 value with C channels (the last axis) and a float32 vector [C], got ") +
              kind_name(x.kind) + " " + list_str(x.shape) + " and " + kind_name(g.kind) + " " + list_str(g.shape));
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
      case OpType::conv2d_f32: {
        need(x.kind == Kind::f32 || x.kind == Kind::u8, "float32 or the uint8 image");
        out.shape = conv_geometry(x);
        out.kind = Kind::f32;
        op_.groups = attr("groups") ? integer("groups", 1, kMaxDim) : 1;
        if (op_.in_channels % op_.groups != 0 || op_.out_channels % op_.groups != 0)
          bad("attribute groups = " + std::to_string(op_.groups) + " must divide in_channels (" +
              std::to_string(op_.in_channels) + ") and out_channels (" + std::to_string(op_.out_channels) + ")");
        tens["weight"] = {DType::f32, {op_.out_channels, op_.kh, op_.kw, op_.in_channels / op_.groups}};
        tens["bias"] = {DType::f32, {op_.out_channels}};
        if (x.kind == Kind::u8) {
          tens["in_scale"] = {DType::f32, {op_.in_channels}};
          tens["in_offset"] = {DType::f32, {op_.in_channels}};
        }
        break;
      }
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
      case OpType::concat: {
        const Value& b = *xs[1];
        if (x.kind != b.kind || x.kind == Kind::u8 || x.shape.size() != 3 || b.shape.size() != 3 ||
            x.shape[0] != b.shape[0] || x.shape[1] != b.shape[1])
          bad(std::string("inputs must be two int8, two float32 or two bits feature maps [H, W, C] of one H and W, got ") +
              kind_name(x.kind) + " " + list_str(x.shape) + " and " + kind_name(b.kind) + " " + list_str(b.shape));
        if (x.kind == Kind::int8 && x.scale != b.scale)
          bad("int8 inputs must have one scale, got " + repr(json(x.scale)) + " and " + repr(json(b.scale)) +
              " (the converter requantizes one of them first)");
        out = x;
        out.shape = {x.shape[0], x.shape[1], x.shape[2] + b.shape[2]};
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

}  // namespace

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

void check_graph(const json& g, const json& output_doc, Model& m, std::vector<OpJson>& ops_json) {
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
  const json& mout = output_doc["name"];
  const std::string last = ops_json.back().output;
  if (!gout.is_string() || gout.get<std::string>() != last || mout.get<std::string>() != gout.get<std::string>())
    fail("graph output " + repr(gout) + " must be the last op's output " + q(last) + " and the metadata output " +
         repr(mout));
  const Value& ov = m.values.back();
  if (ov.kind != Kind::f32 || ov.shape.size() != 1)
    fail(std::string("graph output must be flat float32 logits, got ") + kind_name(ov.kind) + " " + list_str(ov.shape));
  const json* oshape = get(output_doc, "shape");
  bool same = oshape && oshape->is_array() && oshape->size() == 1 && is_int((*oshape)[0]);
  int64_t oc = 0;
  same = same && as_int((*oshape)[0], oc) && oc == ov.shape[0];
  if (!same)
    fail("metadata output shape " + (oshape ? repr(*oshape) : std::string("None")) + " differs from the graph's " +
         list_str(ov.shape));
  m.output_name = last;
  m.num_classes = ov.shape[0];
}

Spec op_tensor_spec(const Model& m, const OpJson& oj, size_t i) {
  Op scratch;  // the checker is deterministic and already passed: this only recomputes the spec
  scratch.name = oj.name;
  scratch.type = oj.t;
  OpChecker ck(oj, scratch);
  std::vector<const Value*> xs;
  for (int v : m.ops[i].inputs) xs.push_back(&m.values[static_cast<size_t>(v)]);
  Spec spec;
  ck.check(xs, spec);
  return spec;
}

void op_fail(const OpJson& oj, const std::string& msg) { fail("op " + q(oj.name) + " (" + oj.type + "): " + msg); }

}  // namespace detail

const char* op_type_name(OpType t) {
  for (const auto& i : detail::kOpTypes)
    if (i.type == t) return i.name;
  return "?";
}

}  // namespace onebit::rt
