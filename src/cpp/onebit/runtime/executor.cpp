#include "onebit/runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "onebit/add.h"
#include "onebit/affine.h"
#include "onebit/bitpack.h"
#include "onebit/bplanes.h"
#include "onebit/concat.h"
#include "onebit/conv8.h"
#include "onebit/densef.h"
#include "onebit/dwconv8.h"
#include "onebit/kernels/scratch.h"
#include "onebit/pool.h"
#include "onebit/runtime/loader.h"
#include "onebit/threadpool.h"

namespace onebit::rt {

namespace {
constexpr size_t kMaxFreeContexts = 4;
constexpr int64_t kMaxBatch = int64_t{1} << 24;
// Work units (op_work) a thread should get before an op is split across threads: a fork/join of
// the pool costs a few microseconds, about what one thread needs for this much work.
constexpr int64_t kMinWorkPerThread = int64_t{1} << 16;

// Rough cost of one sample of an op, in multiply-accumulates (a binary op: 8 per 64-bit word of
// its dot products; pooling: one per window tap; element-wise ops: one per element). Only decides
// how many threads an op gets, never a result.
int64_t op_work(const Op& op, const Value& x, const Value& y) {
  const int64_t out = y.elements(), taps = int64_t{op.kh} * op.kw;
  switch (op.type) {
    case OpType::conv2d_u8:
    case OpType::conv2d_i8: return out * taps * op.in_channels;
    case OpType::conv1x1_f32:
    case OpType::dense_f32: return out * op.in_channels;
    case OpType::bconv2d: return out * taps * ((op.in_channels + 63) / 64) * 8;
    case OpType::bdense: return out * ((op.in_channels + 63) / 64) * 8;
    case OpType::avgpool2d:
    case OpType::maxpool2d: return out * taps;
    case OpType::flatten: return 0;
    default: return std::max(x.elements(), out);
  }
}

// The logistic function of sigmoid_f32 (docs/format.md §7.3): computed in float64 with the C
// library's exp of a non-positive argument (it never overflows), rounded once to float32.
// onebit.convert.simulate computes the same expression with Python's math.exp (the same libm).
float sigmoid_f32(float v) {
  const double d = static_cast<double>(v);
  if (d >= 0.0) return static_cast<float>(1.0 / (1.0 + std::exp(-d)));
  const double e = std::exp(d);
  return static_cast<float>(e / (1.0 + e));
}

// x >= 0 ? x : slope * x, as a bit select of the two values by the comparison's mask: no branch
// (random signs mispredict half the time) and no conditional float operation, which GCC will not
// if-convert under -ftrapping-math; so the loop vectorizes (measured 30x faster than the branch).
inline float prelu_f32(float v, float slope) {
  const float neg = slope * v;
  uint32_t a, b;
  std::memcpy(&a, &v, sizeof a);
  std::memcpy(&b, &neg, sizeof b);
  const uint32_t keep = 0u - static_cast<uint32_t>(v >= 0.0f);
  const uint32_t r = (a & keep) | (b & ~keep);
  float y;
  std::memcpy(&y, &r, sizeof y);
  return y;
}

// n floats from s to d: a tap of a few channels is too short for a memcpy call (its dispatch
// cost several times the copy); fixed 16-byte copies compile to one vector move each.
inline void copy_floats(float* d, const float* s, int64_t n) {
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) std::memcpy(d + k, s + k, 4 * sizeof(float));
  for (; k < n; ++k) d[k] = s[k];
}

[[noreturn]] void bad_op(const Op& op, const std::string& msg) {
  throw FormatError("op '" + op.name + "' (" + op_type_name(op.type) + "): " + msg);
}

// What the engine's kernels cannot run, checked before anything is prepared (so that a model
// whose raw weights get released is never left half prepared by a FormatError).
void check_runnable(const Model& m) {
  for (const Op& op : m.ops) {
    if (op.type == OpType::bconv2d_planes &&
        (op.sh != op.sw || op.ph != op.pw || op.ph_end != op.ph || op.pw_end != op.pw))
      bad_op(op, "the engine's bit-plane convolution needs the same stride and symmetric padding on both axes, "
                 "got stride [" + std::to_string(op.sh) + ", " + std::to_string(op.sw) + "] padding [" +
                     std::to_string(op.ph) + ", " + std::to_string(op.pw) + "] padding_end [" +
                     std::to_string(op.ph_end) + ", " + std::to_string(op.pw_end) + "]");
    if (op.type != OpType::bconv2d && op.type != OpType::bdense) continue;
    if (op.type == OpType::bconv2d && (op.sh != op.sw || op.ph != op.pw || op.ph_end != op.pw_end))
      bad_op(op, "the engine's binary convolution needs the same stride and padding on both axes, got stride [" +
                     std::to_string(op.sh) + ", " + std::to_string(op.sw) + "] padding [" + std::to_string(op.ph) +
                     ", " + std::to_string(op.pw) + "] padding_end [" + std::to_string(op.ph_end) + ", " +
                     std::to_string(op.pw_end) + "]");
    if (op.accumulator_bound > 32767 && accumulator_bits(op.accumulator_bound) < 32)
      bad_op(op, "the engine would accumulate K = " + std::to_string(op.accumulator_bound) + " bits in " +
                     std::to_string(accumulator_bits(op.accumulator_bound)) + " bits");
  }
}

// The binary conv kernels' arguments (bconv2d, and bconv2d_planes, whose pad_value is 0) for one
// run of `op` on `n` samples of `xv` at `x`.
BConvArgs bconv_args(const Op& op, const PreparedWeights* prepared, const Value& xv, int64_t n, const void* x,
                     const OutputStage& stage, void* y) {
  BConvArgs a;
  a.x = static_cast<const uint64_t*>(x);
  a.prepared = prepared;
  a.s.n = n; a.s.h = xv.shape[0]; a.s.w = xv.shape[1]; a.s.cin = op.in_channels; a.s.cout = op.out_channels;
  a.s.kh = op.kh; a.s.kw = op.kw; a.s.stride = op.sh; a.s.pad = op.ph; a.s.pad_end = op.ph_end;
  a.s.pad_value = op.pad_value;
  a.stage = stage;
  a.out = y;
  return a;
}

}  // namespace

// Fixed per-op parameters, computed once.
struct Executor::OpState {
  std::shared_ptr<const PreparedWeights> prepared;    // bconv2d / bdense
  std::shared_ptr<const PlanesWeights> planes;        // bconv2d_planes
  std::shared_ptr<const Conv8Prepared> prepared8;     // conv2d_u8 / conv2d_i8
  // conv1x1_f32 / conv2d_f32 on AVX-512: W^T, one per group (null entries elsewhere)
  std::vector<std::shared_ptr<const DenseF32Prepared>> preparedf;
  OutputStage stage;                                  // the producers above and conv2d_u8 / conv2d_i8 / dwconv2d_i8
};

struct Executor::Context {
  const Plan* plan = nullptr;
  const Fusion* fusion = nullptr;  // the graph the plan is for
  std::shared_ptr<uint8_t> arena;
  std::vector<uint8_t*> ptr;  // per value
};

Executor::Executor(std::shared_ptr<Model> model, Isa isa, int threads, RawWeights raw, const std::string& path, bool fuse)
    : model_(model), isa_(isa), threads_(threads) {
  if (!model_) throw std::invalid_argument("no model");
  if (threads < 1) throw std::invalid_argument("threads must be >= 1, got " + std::to_string(threads));
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) + "' is not available on this CPU/build");
  check_runnable(*model);
  Model& m = *model;
  for (const Op& op : m.ops)
    if (op.released && path.empty())
      throw std::logic_error("op '" + op.name + "': its raw weights were released and no model file is given to read them again");
  fusion_ = plan_fusion(m, fuse);
  unfused_ = plan_fusion(m, false);
  state_.resize(m.ops.size());
  // largest first: while the last (smallest) op is prepared, every other op holds one copy
  std::vector<std::pair<int64_t, size_t>> order;
  for (size_t i = 0; i < m.ops.size(); ++i) {
    int64_t bytes = 0;
    for (const auto& [role, t] : m.ops[i].tensors)
      if (prepared_role(m.ops[i].type, role)) bytes += m.tensors[static_cast<size_t>(t)].nbytes;
    order.emplace_back(-bytes, i);
  }
  std::sort(order.begin(), order.end());
  for (const auto& [neg_bytes, i] : order) {
    Op& op = m.ops[i];
    OpState& st = state_[i];
    auto t = [&](const char* role) { return op.tensor(m.tensors, role); };
    const bool binary = op.type == OpType::bconv2d || op.type == OpType::bdense;
    const bool int8conv = op.type == OpType::conv2d_u8 || op.type == OpType::conv2d_i8;
    const bool planes = op.type == OpType::bconv2d_planes;
    if (op.type == OpType::conv1x1_f32 || op.type == OpType::conv2d_f32) {  // raw weights kept
      const int64_t k = op.type == OpType::conv2d_f32 ? int64_t{op.kh} * op.kw * op.in_channels / op.groups
                                                      : op.in_channels;
      const int64_t og = op.out_channels / op.groups;
      for (int64_t g = 0; g < op.groups; ++g)  // group g: its og rows of the (Cout, KH, KW, Cin/groups) weights
        st.preparedf.push_back(dense_f32_prepare(t("weight")->as<float>() + g * og * k, k, og, isa_));
      continue;
    }
    if (!binary && !int8conv && !planes && op.type != OpType::dwconv2d_i8) continue;
    load_op_weights(m, i, path);  // when released
    if (op.type == OpType::dwconv2d_i8) {
      dwconv8_bound(op.kh, op.kw);  // weights are read as stored (kh, kw, c)
    } else if (planes) {
      st.planes = prepare_planes_weights(op.weight.get(), op.window_layout, op.weight_bits, op.out_channels, op.kh,
                                         op.kw, op.in_channels);
    } else if (binary) {
      const int64_t kh = op.type == OpType::bconv2d ? op.kh : 1, kw = op.type == OpType::bconv2d ? op.kw : 1;
      st.prepared = prepare_bconv_weights(op.weight.get(), op.out_channels, kh, kw, op.in_channels, isa_, threads,
                                          op.mask.get());
    } else {
      // int8 weights laid out once for this ISA's kernel, with the zero points (conv2d_i8: 0)
      // and the input's signedness.
      const bool x_signed = op.type == OpType::conv2d_i8;
      const int32_t* zp = x_signed ? nullptr : t("zero_point")->as<int32_t>();
      st.prepared8 = conv8_prepare(t("weight")->as<int8_t>(), op.out_channels, op.kh, op.kw, op.in_channels, zp,
                                   x_signed, isa_, threads);
    }
    if (raw == RawWeights::release) release_prepared_weights(m, op);
    OutputStage& s = st.stage;
    if (op.stage == Stage::bits) {
      s.kind = OutputKind::bits;
      s.threshold = t("threshold")->as<int32_t>();
      s.direction = t("direction")->as<int8_t>();
    } else if (op.stage == Stage::int8) {
      s.kind = OutputKind::int8;
      s.multiplier = t("multiplier")->as<int32_t>();
      s.bias = t("bias")->as<int32_t>();
      s.shift = op.shift;
    } else {
      s.kind = OutputKind::f32;
      s.scale = t("scale")->as<float>();
      s.fbias = t("bias")->as<float>();
    }
  }
}

Executor::~Executor() = default;

void Executor::set_threads(int threads) {
  if (threads < 1) throw std::invalid_argument("threads must be >= 1, got " + std::to_string(threads));
  threads_.store(threads);
}

const Plan& Executor::plan(int64_t n, bool share) {
  auto key = std::make_pair(n, share);
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  if (plans_.size() >= 8) {  // keep a few batch sizes; drop plans no context uses
    for (auto p = plans_.begin(); p != plans_.end();) {
      bool used = false;
      for (const auto& c : free_) used = used || c->plan == p->second.get();
      p = used ? std::next(p) : plans_.erase(p);
    }
  }
  auto p = std::make_unique<Plan>(make_plan(*model_, n, share, share ? fusion_ : unfused_));
  const Plan& ref = *p;
  plans_[key] = std::move(p);
  return ref;
}

int64_t Executor::activation_bytes(int64_t n) {
  std::lock_guard<std::mutex> g(mu_);
  return plan(n, true).arena_bytes;
}

std::unique_ptr<Executor::Context> Executor::acquire(int64_t n, bool share) {
  {
    std::lock_guard<std::mutex> g(mu_);
    for (size_t i = 0; i < free_.size(); ++i)
      if (free_[i]->plan->n == n && free_[i]->plan->share == share) {
        auto c = std::move(free_[i]);
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        return c;
      }
  }
  auto c = std::make_unique<Context>();
  const Plan* p;
  {
    std::lock_guard<std::mutex> g(mu_);
    p = &plan(n, share);
  }
  c->plan = p;
  c->fusion = share ? &fusion_ : &unfused_;
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(p->arena_bytes, 64));
  void* mem = ::operator new(bytes, std::align_val_t(64));
  std::memset(mem, 0, bytes);
  c->arena = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(mem),
                                      [](uint8_t* q) { ::operator delete(q, std::align_val_t(64)); });
  c->ptr.assign(model_->values.size(), nullptr);
  for (size_t v = 0; v < c->ptr.size(); ++v)
    if (p->slot[v] >= 0) c->ptr[v] = c->arena.get() + p->offset[static_cast<size_t>(p->slot[v])];
  return c;
}

void Executor::release(std::unique_ptr<Context> c) {
  std::lock_guard<std::mutex> g(mu_);
  free_.push_back(std::move(c));
  if (free_.size() > kMaxFreeContexts) free_.erase(free_.begin());
}

void Executor::run(const uint8_t* input, int64_t n, float* output, std::vector<double>* op_ms) {
  if (!input || !output) throw std::invalid_argument("input and output must not be null");
  if (n < 1 || n > kMaxBatch)
    throw std::invalid_argument("batch size must be in [1, " + std::to_string(kMaxBatch) + "], got " + std::to_string(n));
  auto c = acquire(n, true);
  try {
    execute(*c, input, op_ms);
  } catch (...) {
    release(std::move(c));
    throw;
  }
  const Model& m = *model_;
  std::memcpy(output, c->ptr[static_cast<size_t>(m.ops.back().output)],
              static_cast<size_t>(n * m.num_classes) * sizeof(float));
  release(std::move(c));
}

std::vector<std::vector<uint8_t>> Executor::run_values(const uint8_t* input, int64_t n) {
  if (!input) throw std::invalid_argument("input must not be null");
  if (n < 1 || n > kMaxBatch)
    throw std::invalid_argument("batch size must be in [1, " + std::to_string(kMaxBatch) + "], got " + std::to_string(n));
  auto c = acquire(n, false);
  std::vector<std::vector<uint8_t>> out;
  try {
    execute(*c, input, nullptr);
    const Model& m = *model_;
    for (size_t v = 0; v < m.values.size(); ++v) {
      const int64_t bytes = n * m.values[v].sample_bytes();
      const uint8_t* src = v == 0 ? input : c->ptr[v];
      out.emplace_back(src, src + bytes);
    }
  } catch (...) {
    release(std::move(c));
    throw;
  }
  release(std::move(c));
  return out;
}

void Executor::execute(Context& c, const uint8_t* input, std::vector<double>* op_ms) {
  const Model& m = *model_;
  const int64_t n = c.plan->n;
  c.ptr[0] = const_cast<uint8_t*>(input);  // read only: no op writes the graph input
  if (op_ms) op_ms->assign(m.ops.size(), 0.0);
  const Isa isa = isa_;
  const int threads = threads_.load();
  const Fusion& f = *c.fusion;
  for (size_t i = 0; i < m.ops.size(); ++i) {
    if (f.host[i] >= 0) continue;  // runs inside op f.host[i]'s output stage
    const Op& op = m.ops[i];
    const OpState& st = state_[i];
    const Value& xv = m.values[static_cast<size_t>(op.inputs[0])];
    const Value& yv = m.values[static_cast<size_t>(op.output)];
    const void* x = c.ptr[static_cast<size_t>(op.inputs[0])];
    void* y = c.ptr[static_cast<size_t>(f.int8_output(m, i))];  // op.output unless an add is fused
    // The ops fused after this conv's int8 stage, with this context's buffers.
    StageTail tail;
    OutputStage stage = st.stage;
    if (f.add_into[i] >= 0 || f.pack_into[i] >= 0) {
      const int res = f.residual(m, i);
      int32_t m_out = 0, m_res = 0;
      int shift = 0;
      if (res >= 0) {
        const Op& add = m.ops[static_cast<size_t>(f.add_into[i])];
        const bool first = add.inputs[0] == op.output;
        m_out = first ? add.ma : add.mb;
        m_res = first ? add.mb : add.ma;
        shift = add.shift;
      }
      uint64_t* packed = f.pack_into[i] >= 0
                             ? reinterpret_cast<uint64_t*>(c.ptr[static_cast<size_t>(m.ops[static_cast<size_t>(f.pack_into[i])].output)])
                             : nullptr;
      tail = make_stage_tail(isa, res >= 0 ? reinterpret_cast<const int8_t*>(c.ptr[static_cast<size_t>(res)]) : nullptr,
                             m_out, m_res, shift, packed);
      stage.tail = &tail;
    }
    // an op too small to pay for a fork/join runs on the calling thread alone
    const int th = threads > 1 ? threads_for(n * op_work(op, xv, yv), kMinWorkPerThread, threads) : 1;
    std::chrono::steady_clock::time_point t0;
    if (op_ms) t0 = std::chrono::steady_clock::now();
    auto pool_geom = [&](int64_t c_per_pixel) {
      PoolGeom g;
      g.n = n; g.h = xv.shape[0]; g.w = xv.shape[1]; g.c = c_per_pixel;
      g.kh = op.kh; g.kw = op.kw; g.sh = op.sh; g.sw = op.sw; g.ph = op.ph; g.pw = op.pw;
      g.ceil_mode = op.ceil_mode;
      pool_geom_finish(g);
      return g;
    };
    switch (op.type) {
      case OpType::conv2d_u8:
      case OpType::conv2d_i8: {
        Conv8Args a;
        a.x = x;
        a.x_signed = op.type == OpType::conv2d_i8;
        a.prepared = st.prepared8.get();
        a.y = y;
        Conv8Geom& g = a.g;
        g.n = n; g.h = xv.shape[0]; g.w = xv.shape[1]; g.cin = op.in_channels; g.cout = op.out_channels;
        g.kh = op.kh; g.kw = op.kw; g.sh = op.sh; g.sw = op.sw; g.ph = op.ph; g.pw = op.pw;
        g.ph_end = op.ph_end; g.pw_end = op.pw_end;
        conv8_geom_finish(g);
        a.stage = stage;
        conv8(a, isa, th);
        break;
      }
      case OpType::dwconv2d_i8:
      case OpType::dwconv2d_f32: {
        Conv8Geom g;
        g.n = n; g.h = xv.shape[0]; g.w = xv.shape[1]; g.cin = g.cout = op.in_channels;
        g.kh = op.kh; g.kw = op.kw; g.sh = op.sh; g.sw = op.sw; g.ph = op.ph; g.pw = op.pw;
        g.ph_end = op.ph_end; g.pw_end = op.pw_end;
        dwconv8_geom_finish(g);
        if (op.type == OpType::dwconv2d_f32) {
          DwConvF32Args a;
          a.x = static_cast<const float*>(x);
          a.w = op.tensor(m.tensors, "weight")->as<float>();
          a.bias = op.tensor(m.tensors, "bias")->as<float>();
          a.y = static_cast<float*>(y);
          a.g = g;
          dwconv_f32(a, isa, th);
          break;
        }
        DwConv8Args a;
        a.x = static_cast<const int8_t*>(x);
        a.w = op.tensor(m.tensors, "weight")->as<int8_t>();
        a.y = y;
        a.g = g;
        a.stage = st.stage;
        dwconv8(a, isa, th);
        break;
      }
      case OpType::conv2d_f32: {  // im2col (taps in (i, j, c) order, padded taps 0.0) + the dense kernel, per group
        const int64_t h = xv.shape[0], w = xv.shape[1], cin = op.in_channels;
        const int64_t oh = yv.shape[0], ow = yv.shape[1], k = int64_t{op.kh} * op.kw * cin;
        // buffers kept by the thread (grow-only): a fresh allocation per call costs page faults
        static thread_local kernels::Scratch<float> img_buf, patch_buf, part_buf;
        const float* xf = static_cast<const float*>(x);
        if (xv.kind == Kind::u8) {  // the uint8 image normalized: float32(u) * in_scale[c] + in_offset[c]
          const float* sc = op.tensor(m.tensors, "in_scale")->as<float>();
          const float* of = op.tensor(m.tensors, "in_offset")->as<float>();
          const uint8_t* u = static_cast<const uint8_t*>(x);
          float* img = img_buf.get(static_cast<size_t>(n * h * w * cin));
          for (int64_t p = 0; p < n * h * w; ++p)
            for (int64_t c = 0; c < cin; ++c) {
              const float prod = static_cast<float>(u[p * cin + c]) * sc[c];
              img[p * cin + c] = prod + of[c];
            }
          xf = img;
        }
        // groups: group g reads input channels [g*cg, (g+1)*cg) and writes output channels
        // [g*og, (g+1)*og), with its rows of the (Cout, KH, KW, Cin/groups) weights
        const int64_t g_n = op.groups, cg = cin / g_n, og = op.out_channels / g_n, kg = k / g_n, rows = n * oh * ow;
        const float* wt = op.tensor(m.tensors, "weight")->as<float>();
        const float* bias = op.tensor(m.tensors, "bias")->as<float>();
        float* const patches = patch_buf.get(static_cast<size_t>(rows * kg));
        float* const part = g_n > 1 ? part_buf.get(static_cast<size_t>(rows * g_n * og)) : nullptr;  // [g][row][og]
        for (int64_t g = 0; g < g_n; ++g) {
          // output rows (image, oy) over threads; no division per pixel
          parallel_for(n * oh, threads_for(rows * kg, int64_t{1} << 15, th), [&](int64_t q0, int64_t q1) {
            // the geometry in locals: the copies' stores may alias anything reached by reference
            const int kh = op.kh, kw = op.kw, sh = op.sh, sw = op.sw, ph = op.ph, pw = op.pw;
            const int64_t ih = h, iw = w, c = cin, c0 = g * cg, nc = cg, ohl = oh, owl = ow, kgl = kg;
            const float* const src = xf;
            for (int64_t q = q0; q < q1; ++q) {
              const int64_t b = q / ohl, oy = q % ohl;
              float* pr = patches + q * owl * kgl;
              for (int64_t ox = 0; ox < owl; ++ox)
                for (int i = 0; i < kh; ++i) {
                  const int64_t iy = oy * sh - ph + i;
                  for (int j = 0; j < kw; ++j, pr += nc) {
                    const int64_t ix = ox * sw - pw + j;
                    if (iy < 0 || iy >= ih || ix < 0 || ix >= iw)
                      std::fill(pr, pr + nc, 0.0f);
                    else
                      copy_floats(pr, src + ((b * ih + iy) * iw + ix) * c + c0, nc);
                  }
                }
            }
          });
          float* out = g_n > 1 ? part + g * rows * og : static_cast<float*>(y);
          dense_f32(patches, wt + g * og * kg, bias + g * og, out, rows, kg, og, isa, th,
                    st.preparedf[static_cast<size_t>(g)].get());
        }
        if (g_n > 1)  // the groups' outputs side by side in each row, y written once in order
          parallel_for(rows, threads_for(rows * op.out_channels, int64_t{1} << 15, th), [&](int64_t r0, int64_t r1) {
            const int64_t ld = op.out_channels, n_out = og, groups = g_n, stride = rows * og;
            float* const dst = static_cast<float*>(y);
            const float* const from = part;
            for (int64_t r = r0; r < r1; ++r)
              for (int64_t gi = 0; gi < groups; ++gi)
                copy_floats(dst + r * ld + gi * n_out, from + gi * stride + r * n_out, n_out);
          });
        break;
      }
      case OpType::conv1x1_f32:  // a dense layer over the N*H*W pixels
        dense_f32(static_cast<const float*>(x), op.tensor(m.tensors, "weight")->as<float>(),
                  op.tensor(m.tensors, "bias")->as<float>(), static_cast<float*>(y),
                  n * xv.shape[0] * xv.shape[1], op.in_channels, op.out_channels, isa, th, st.preparedf[0].get());
        break;
      case OpType::avgpool2d: {
        const PoolGeom g = pool_geom(xv.shape[2]);
        if (xv.kind == Kind::int8)
          avgpool_int8(static_cast<const int8_t*>(x), static_cast<int8_t*>(y), g, op.count_include_pad, isa, th);
        else
          avgpool_f32(static_cast<const float*>(x), static_cast<float*>(y), g, op.count_include_pad, isa, th);
        break;
      }
      case OpType::global_avgpool:
        if (xv.kind == Kind::int8)
          global_avgpool_int8_f32(static_cast<const int8_t*>(x), static_cast<float*>(y), n,
                                  xv.shape[0] * xv.shape[1], xv.shape[2], static_cast<float>(xv.scale), isa, th);
        else
          global_avgpool_f32(static_cast<const float*>(x), static_cast<float*>(y), n, xv.shape[0] * xv.shape[1],
                             xv.shape[2], isa, th);
        break;
      case OpType::add: {
        const void* b = c.ptr[static_cast<size_t>(op.inputs[1])];
        const int64_t count = n * xv.elements();
        if (xv.kind == Kind::int8)
          add_int8(static_cast<const int8_t*>(x), static_cast<const int8_t*>(b), static_cast<int8_t*>(y), count,
                   op.ma, op.mb, op.shift, isa, th);
        else
          add_f32(static_cast<const float*>(x), static_cast<const float*>(b), static_cast<float*>(y), count, isa, th);
        break;
      }
      case OpType::concat: {
        const void* b = c.ptr[static_cast<size_t>(op.inputs[1])];
        const Value& bv = m.values[static_cast<size_t>(op.inputs[1])];
        const int64_t pixels = n * xv.shape[0] * xv.shape[1];
        if (xv.kind == Kind::bits)
          concat_bits(static_cast<const uint64_t*>(x), static_cast<const uint64_t*>(b), static_cast<uint64_t*>(y),
                      pixels, xv.shape[2], bv.shape[2], th);
        else
          concat_bytes(x, b, y, pixels, xv.sample_bytes() / (xv.shape[0] * xv.shape[1]),
                       bv.sample_bytes() / (bv.shape[0] * bv.shape[1]), th);
        break;
      }
      case OpType::bconv2d:
        bconv2d(bconv_args(op, st.prepared.get(), xv, n, x, stage, y), isa, th);
        break;
      case OpType::bitplanes:
        bitplanes(static_cast<const uint8_t*>(x), n * xv.shape[0] * xv.shape[1], xv.shape[2], op.planes.data(),
                  static_cast<int64_t>(op.planes.size()), static_cast<uint64_t*>(y), isa, th);
        break;
      case OpType::bconv2d_planes:
        bconv2d_planes(bconv_args(op, nullptr, xv, n, x, st.stage, y), *st.planes, isa, th);
        break;
      case OpType::bdense:
        bdense(static_cast<const uint64_t*>(x), nullptr, n, op.in_channels, op.out_channels, st.stage, y, isa, th,
               st.prepared.get(), nullptr);
        break;
      case OpType::maxpool2d:
        if (xv.kind == Kind::bits) {
          const PoolGeom g = pool_geom((xv.shape[2] + 63) / 64);
          maxpool_bits(static_cast<const uint64_t*>(x), static_cast<uint64_t*>(y), g, isa, th);
        } else if (xv.kind == Kind::int8) {
          maxpool_int8(static_cast<const int8_t*>(x), static_cast<int8_t*>(y), pool_geom(xv.shape[2]), isa, th);
        } else {
          maxpool_f32(static_cast<const float*>(x), static_cast<float*>(y), pool_geom(xv.shape[2]), isa, th);
        }
        break;
      case OpType::bitpack: {
        const int64_t ch = xv.shape.back();
        const int64_t pixels = n * (xv.elements() / ch);
        if (xv.kind == Kind::f32)
          bitpack_f32(static_cast<const float*>(x), pixels, ch, static_cast<uint64_t*>(y), isa, th);
        else
          bitpack_i8(static_cast<const int8_t*>(x), pixels, ch, static_cast<uint64_t*>(y), isa, th);
        break;
      }
      case OpType::dequantize: {  // int8 -> float32 is exact; one float32 rounding of the product
        const float s = static_cast<float>(xv.scale);
        const int8_t* xi = static_cast<const int8_t*>(x);
        float* yf = static_cast<float*>(y);
        const int64_t count = n * xv.elements();
        for (int64_t k = 0; k < count; ++k) yf[k] = static_cast<float>(xi[k]) * s;
        break;
      }
      case OpType::affine_f32: {  // per channel (the last axis): x * scale[c] + bias[c], two roundings
        const int64_t c = xv.shape.back();
        affine_f32(static_cast<const float*>(x), op.tensor(m.tensors, "scale")->as<float>(),
                   op.tensor(m.tensors, "bias")->as<float>(), static_cast<float*>(y), n * (xv.elements() / c), c,
                   isa, th);
        break;
      }
      case OpType::clamp_f32: {  // NumPy's clip: min(max(x, lo), hi), NaN propagates
        // bounds: the attributes, or per channel (the last axis) the tensors lower / upper
        const Tensor* lt = op.tensor(m.tensors, "lower");
        const float lo0 = static_cast<float>(op.min), hi0 = static_cast<float>(op.max);
        const float* lo = lt ? lt->as<float>() : &lo0;
        const float* hi = lt ? op.tensor(m.tensors, "upper")->as<float>() : &hi0;
        const float* xf = static_cast<const float*>(x);
        float* yf = static_cast<float*>(y);
        const int64_t count = n * xv.elements();
        // One comparison per bound (vectorizable): a NaN fails both and is kept.
        const auto clip = [](float v, float l, float h) {
          v = !(v <= l) ? v : l;
          return !(v >= h) ? v : h;
        };
        if (!lt) {
          for (int64_t k = 0; k < count; ++k) yf[k] = clip(xf[k], lo0, hi0);
        } else {  // pixel by pixel, channel k's bounds
          const int64_t c = xv.shape.back();
          for (int64_t p = 0; p < count; p += c)
            for (int64_t k = 0; k < c; ++k) yf[p + k] = clip(xf[p + k], lo[k], hi[k]);
        }
        break;
      }
      case OpType::prelu_f32: {  // per channel (the last axis): x >= 0 ? x : slope[c] * x (one rounding)
        const float* sl = op.tensor(m.tensors, "slope")->as<float>();
        const float* xf = static_cast<const float*>(x);
        float* yf = static_cast<float*>(y);
        const int64_t c = xv.shape.back(), count = n * xv.elements();
        for (int64_t p = 0; p < count; p += c)
          for (int64_t k = 0; k < c; ++k) yf[p + k] = prelu_f32(xf[p + k], sl[k]);
        break;
      }
      case OpType::sigmoid_f32: {  // float32 of the float64 logistic, the C library's exp (docs/format.md)
        const float* xf = static_cast<const float*>(x);
        float* yf = static_cast<float*>(y);
        const int64_t count = n * xv.elements();
        for (int64_t k = 0; k < count; ++k) yf[k] = sigmoid_f32(xf[k]);
        break;
      }
      case OpType::mul_channels_f32: {  // x[..., c] * g[sample, c], one rounding
        const float* g = reinterpret_cast<const float*>(c.ptr[static_cast<size_t>(op.inputs[1])]);
        const float* xf = static_cast<const float*>(x);
        float* yf = static_cast<float*>(y);
        const int64_t ch = xv.shape.back(), per = xv.elements();
        for (int64_t b = 0; b < n; ++b)
          for (int64_t p = 0; p < per; p += ch)
            for (int64_t k = 0; k < ch; ++k) yf[b * per + p + k] = xf[b * per + p + k] * g[b * ch + k];
        break;
      }
      case OpType::flatten:  // a view of its input's buffer (NHWC order, no copy)
        break;
      case OpType::dense_f32:
        dense_f32(static_cast<const float*>(x), op.tensor(m.tensors, "weight")->as<float>(),
                  op.tensor(m.tensors, "bias")->as<float>(), static_cast<float*>(y), n, op.in_channels,
                  op.out_channels, isa, th);
        break;
    }
    if (op_ms)
      (*op_ms)[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
}

}  // namespace onebit::rt
