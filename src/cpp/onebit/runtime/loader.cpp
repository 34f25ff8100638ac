// The .onebit loader (loader.h): file layout, metadata, tensors and their contents; the graph
// checks are in graph_check.cpp. Mirrors onebit/runtime/format.py check by check.
#include "onebit/runtime/loader.h"

#include "onebit/runtime/graph_check.h"
#include "onebit/runtime/json_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

namespace onebit::rt {

namespace {

using namespace detail;

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

uint64_t bytes_hash(const uint8_t* p, int64_t n) {
  return std::hash<std::string_view>()(std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n)));
}

// A model file open for reading; every failure is an IoError naming the path.
class FileReader {
 public:
  explicit FileReader(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "rb")) {
    if (!f_) throw IoError("cannot open model file '" + path + "': " + std::strerror(errno));
  }
  ~FileReader() { std::fclose(f_); }
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  IoError failed(const char* what) const { return IoError("cannot read model file '" + path_ + "': " + what); }
  std::FILE* get() const { return f_; }
  void read(int64_t off, int64_t n, uint8_t* dst) const {
    if (std::fseek(f_, off, SEEK_SET) != 0 || std::fread(dst, 1, static_cast<size_t>(n), f_) != static_cast<size_t>(n))
      throw failed("short read");
  }

 private:
  std::string path_;
  std::FILE* f_;
};

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
  for (const char* role : {"scale", "bias", "weight", "in_scale", "in_offset", "lower", "upper", "slope"}) {
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
  if (const Tensor* lo = op.tensor(all, "lower")) {  // clamp_f32 per channel
    const float *l = lo->as<float>(), *u = op.tensor(all, "upper")->as<float>();
    for (int64_t i = 0; i < lo->nbytes / 4; ++i)
      if (!(l[i] <= u[i])) c.bad("tensor 'lower' exceeds 'upper' at channel " + std::to_string(i));
  }
  if (op.type == OpType::conv2d_u8 || op.type == OpType::conv2d_i8 || op.type == OpType::dwconv2d_i8) {
    const Tensor* w = op.tensor(all, "weight");
    const int8_t* p = w->as<int8_t>();
    for (int64_t i = 0; i < w->nbytes; ++i)
      if (p[i] == -128) c.bad("int8 weights must lie on the symmetric grid [-127, 127]");
  }
  if (op.type == OpType::bconv2d || op.type == OpType::bdense) check_binary(c, op, all);
  if (op.type == OpType::bconv2d_planes) {
    const Tensor* w = op.tensor(all, "weight");
    // rows of Cin bits ("taps") or of KH*KW*Cin bits ("window"), padding bits 0
    const int64_t bits = op.window_layout ? op.kh * op.kw * op.in_channels : op.in_channels;
    const int64_t w64 = num_words(bits), rem = bits % 64;
    const int64_t rows = w->nbytes / 8 / w64;
    const uint64_t* wp = w->as<uint64_t>();
    if (rem)
      for (int64_t r = 0; r < rows; ++r)
        if (wp[r * w64 + w64 - 1] >> rem)
          c.bad(op.window_layout
                    ? "window weights have non-zero padding bits (bits " + std::to_string(bits) + ".. of a row)"
                    : "packed weights have non-zero channel padding bits (channels " + std::to_string(op.in_channels) + "..)");
    op.weight = std::shared_ptr<const uint64_t>(w->storage, wp);
  }
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
  if (!digits || version < kFormatVersion || version > kMaxFormatVersion) {
    std::string known;
    for (int i = kFormatVersion; i <= kMaxFormatVersion; ++i) known += (i > kFormatVersion ? ", " : "") + std::to_string(i);
    fail("format_version " + q(v) + " is not supported (this onebit reads [" + known + "])");
  }
  m.format_version = static_cast<int>(version);
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

// Resolves every op's tensors against the file's entries, copies the data, checks contents.
void tensors(Model& m, const std::vector<OpJson>& ops_json, const std::map<std::string, Entry>& entries,
             const ReadBody& read_body) {
  std::map<std::string, std::string> used;  // tensor name -> op name
  for (size_t i = 0; i < m.ops.size(); ++i) {
    Op& op = m.ops[i];
    const OpJson& oj = ops_json[i];
    const Spec spec = op_tensor_spec(m, oj, i);
    for (const auto& [role, tname] : oj.tensors) {
      auto u = used.find(tname);
      if (u != used.end()) op_fail(oj, "tensor " + q(tname) + " is already used by op " + q(u->second));
      used[tname] = op.name;
      auto e = entries.find(tname);
      if (e == entries.end()) op_fail(oj, "tensor " + q(tname) + " (" + role + ") is missing from the file");
      const auto& [dt, shape] = spec.at(role);
      if (e->second.dtype != dt || e->second.shape != shape)
        op_fail(oj, "tensor " + q(tname) + " (" + role + ") is " + dtype_name(e->second.dtype) + list_str(e->second.shape) +
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
    t.offset = e.begin;  // in the data section (load_impl adds where that starts)
    if (t.nbytes) read_body(e.begin, t.nbytes, t.storage.get());
    t.hash = bytes_hash(t.storage.get(), t.nbytes);
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

// Validates a file of `size` bytes whose first `prefix_len` bytes are at `prefix` (at least the
// 8 + N bytes of the length and the header whenever the file holds them) and reads its data
// section through `read_body`.
static std::shared_ptr<Model> load_impl(const uint8_t* prefix, size_t prefix_len, size_t size,
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
  check_graph(docs.graph, docs.output, *m, ops_json);
  for (const Op& op : m->ops)
    if (op.pad_value == 1 && m->format_version < kOnePaddingVersion)
      fail("op " + q(op.name) + " (" + op_type_name(op.type) + "): pad_value 1 (one-padding) needs format_version " +
           std::to_string(kOnePaddingVersion) + ", the file declares " + std::to_string(m->format_version));
  tensors(*m, ops_json, entries, [&](int64_t off, int64_t len, uint8_t* dst) {
    read_body(static_cast<int64_t>(8 + n) + off, len, dst);
  });
  for (Tensor& t : m->tensors) t.offset += static_cast<int64_t>(8 + n);
  return m;
}

std::shared_ptr<Model> load_model(const uint8_t* data, size_t size) {
  return load_impl(data, size, size, [&](int64_t off, int64_t len, uint8_t* dst) {
    std::memcpy(dst, data + off, static_cast<size_t>(len));
  });
}

std::shared_ptr<Model> load_model_file(const std::string& path, bool release_prepared) {
  FileReader file(path);
  std::FILE* f = file.get();
  auto failed = [&](const char* what) { return file.failed(what); };
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
  std::shared_ptr<Model> m;
  try {
    m = load_impl(prefix.data(), prefix.size(), static_cast<size_t>(size),
                  [&](int64_t off, int64_t len, uint8_t* dst) { file.read(off, len, dst); });
  } catch (const FormatError& e) {
    throw FormatError(path + ": " + e.what());
  }
  if (release_prepared)
    for (Op& op : m->ops) release_prepared_weights(*m, op);
  return m;
}

void load_op_weights(Model& m, size_t i, const std::string& path) {
  Op& op = m.ops.at(i);
  if (!op.released) return;
  FileReader file(path);
  std::map<int, std::shared_ptr<uint8_t>> fresh;
  for (const auto& [role, t] : op.tensors) {
    if (!prepared_role(op.type, role)) continue;
    const Tensor& tensor = m.tensors[static_cast<size_t>(t)];
    auto bytes = aligned_bytes(tensor.nbytes);
    if (tensor.nbytes) file.read(tensor.offset, tensor.nbytes, bytes.get());
    if (bytes_hash(bytes.get(), tensor.nbytes) != tensor.hash)
      throw IoError("model file '" + path + "' changed since it was opened (tensor " + q(tensor.name) +
                    "): open it again");
    fresh[t] = std::move(bytes);
  }
  for (auto& [t, bytes] : fresh) m.tensors[static_cast<size_t>(t)].storage = std::move(bytes);
  check_contents(op, m.tensors);  // the same bytes: rebuilds op.weight / op.mask
  op.released = false;
}

}  // namespace onebit::rt
