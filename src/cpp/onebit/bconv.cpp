// bconv2d / bdense dispatcher: checks geometry and stage parameters, then runs the kernel of
// the requested ISA. Kernels trust their arguments; every check lives here.
#include "onebit/bconv.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace onebit {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

void check_isa(Isa isa) {
  if (!isa_supported(isa))
    fail(std::string("ISA '") + isa_name(isa) + "' is not supported by this CPU or build");
#if !defined(ONEBIT_HAVE_X86)
  if (isa == Isa::avx2 || isa == Isa::avx512) fail("x86 kernels are not compiled in this build");
#endif
  if (isa == Isa::neon) fail("no NEON kernels in this build yet");
}

void check_stage(const OutputStage& st, int64_t cout) {
  switch (st.kind) {
    case OutputKind::int32: return;
    case OutputKind::bits:
      if (!st.threshold || !st.direction) fail("output 'bits' needs threshold and direction");
      for (int64_t c = 0; c < cout; ++c)
        if (st.direction[c] != 1 && st.direction[c] != -1)
          fail("direction must hold only +1 or -1 (channel " + std::to_string(c) + " has " +
               std::to_string(static_cast<int>(st.direction[c])) + ")");
      return;
    case OutputKind::int8:
      if (!st.multiplier || !st.bias) fail("output 'int8' needs multiplier, bias and shift");
      if (st.shift <= 0 || st.shift >= 32)
        fail("shift must satisfy 0 < shift < 32, got " + std::to_string(st.shift));
      return;
    case OutputKind::float32:
      if (!st.scale || !st.fbias) fail("output 'float' needs scale and bias");
      return;
  }
  fail("unknown output kind");
}

}  // namespace

void check_weight_mask(const uint64_t* w, const uint64_t* mask, int64_t cout, int64_t taps, int64_t cin) {
  const int64_t W64 = (cin + 63) / 64;
  const uint64_t pad = cin % 64 ? ~((uint64_t{1} << (cin % 64)) - 1) : 0;
  auto where = [&](int64_t i) {
    return " (output channel " + std::to_string(i / W64 / taps) + ", tap " + std::to_string(i / W64 % taps) +
           ", word " + std::to_string(i % W64) + ")";
  };
  const int64_t n = cout * taps * W64;
  for (int64_t i = W64 - 1; i < n; i += W64)
    if (mask[i] & pad) fail("weight_mask has nonzero padding bits above channel " + std::to_string(cin) + where(i));
  for (int64_t i = 0; i < n; ++i)
    if (w[i] & ~mask[i])
      fail("weight bits are set where weight_mask is 0 (pruned weights must be stored as bit 0)" + where(i));
}

void bconv2d(const BConvArgs& a, Isa isa, int threads) {
  const BConvShape& s = a.s;
  if (s.n < 1 || s.h < 1 || s.w < 1) fail("input must have N, H, W >= 1");
  if (s.cin < 1 || s.cout < 1) fail("in_channels and out_channels must be >= 1");
  if (s.kh < 1 || s.kw < 1) fail("kernel size must be >= 1");
  if (s.stride < 1) fail("stride must be >= 1, got " + std::to_string(s.stride));
  if (s.pad < 0) fail("padding must be >= 0, got " + std::to_string(s.pad));
  if (s.pad >= s.kh || s.pad >= s.kw)
    fail("padding " + std::to_string(s.pad) + " must be smaller than the kernel size (" +
         std::to_string(s.kh) + "x" + std::to_string(s.kw) + ")");
  if (s.h + 2 * s.pad < s.kh || s.w + 2 * s.pad < s.kw)
    fail("kernel " + std::to_string(s.kh) + "x" + std::to_string(s.kw) + " is larger than the padded input " +
         std::to_string(s.h + 2 * s.pad) + "x" + std::to_string(s.w + 2 * s.pad));
  if (s.k_bits() > (int64_t{1} << 31) - 1) fail("K = KH*KW*Cin exceeds the int32 accumulator");
  if (!a.x || (!a.w && !a.prepared) || !a.out) fail("null input, weight or output pointer");
  if (a.weight_mask && a.prepared)
    fail("weight_mask cannot be combined with prepared weights (pass it to prepare_weights instead)");
  check_stage(a.stage, s.cout);
  check_isa(isa);
  isa = kernel_isa(isa);
  if (const PreparedWeights* p = a.prepared) {
    if (p->isa != isa)
      fail(std::string("weights were prepared for ISA '") + isa_name(p->isa) + "' but the call uses '" +
           isa_name(isa) + "'");
    if (p->cout != s.cout || p->kh != s.kh || p->kw != s.kw || p->cin != s.cin)
      fail("prepared weights are for a (" + std::to_string(p->cout) + ", " + std::to_string(p->kh) + ", " +
           std::to_string(p->kw) + ", " + std::to_string(p->cin) + "-channel) layer, not this one");
  }
  if (a.weight_mask) check_weight_mask(a.w, a.weight_mask, s.cout, s.kh * s.kw, s.cin);
  if (a.weight_mask || (a.prepared && a.prepared->masked)) {  // pruned layer
    switch (isa) {
      case Isa::scalar: {
        BConvArgs b = a;
        if (a.prepared) {
          b.w = a.prepared->words.get();
          b.weight_mask = a.prepared->mask.get();
        }
        kernels::bconv_masked_scalar(b, threads);
        return;
      }
#if defined(ONEBIT_HAVE_X86)
      // No AVX-512 masked kernel: AVX-512 CPUs run the AVX2 list kernel (docs/kernels.md).
      case Isa::avx2:
      case Isa::avx512: {
        if (a.prepared) {
          kernels::bconv_masked_avx2(a, threads);
          return;
        }
        PreparedWeights local;  // unprepared call: build the list layout now
        kernels::prepare_masked_list(a.w, a.weight_mask, s, local, threads);
        BConvArgs b = a;
        b.prepared = &local;
        b.weight_mask = nullptr;
        kernels::bconv_masked_avx2(b, threads);
        return;
      }
#endif
      default: fail(std::string("no masked bconv kernel for ISA '") + isa_name(isa) + "'");
    }
  }
  switch (isa) {
    case Isa::scalar: {
      BConvArgs b = a;
      if (a.prepared) b.w = a.prepared->words.get();  // scalar layout = the packed layout
      kernels::bconv_scalar(b, threads);
      return;
    }
#if defined(ONEBIT_HAVE_X86)
    case Isa::avx2: kernels::bconv_avx2(a, threads); return;
    case Isa::avx512: kernels::bconv_avx512(a, threads); return;
#endif
    default: fail(std::string("no bconv kernel for ISA '") + isa_name(isa) + "'");
  }
}

std::shared_ptr<const PreparedWeights> prepare_bconv_weights(const uint64_t* w, int64_t cout, int64_t kh,
                                                             int64_t kw, int64_t cin, Isa isa, int threads,
                                                             const uint64_t* weight_mask) {
  if (!w) fail("null weight pointer");
  if (cout < 1 || kh < 1 || kw < 1 || cin < 1) fail("weights need Cout, KH, KW, in_channels >= 1");
  check_isa(isa);
  isa = kernel_isa(isa);
  if (weight_mask) check_weight_mask(w, weight_mask, cout, kh * kw, cin);
  auto p = std::make_shared<PreparedWeights>();
  p->isa = isa;
  p->cout = cout;
  p->kh = kh;
  p->kw = kw;
  p->cin = cin;
  BConvShape s;
  s.cout = cout;
  s.kh = kh;
  s.kw = kw;
  s.cin = cin;
  if (weight_mask) {  // pruned layer
#if defined(ONEBIT_HAVE_X86)
    if (isa == Isa::avx2 || isa == Isa::avx512) {  // both run the AVX2 list kernel
      kernels::prepare_masked_list(w, weight_mask, s, *p, threads);
      return p;
    }
#endif
    p->masked = true;  // scalar: the packed weights and mask as they are
    p->nmask = p->nwords = static_cast<size_t>(cout * kh * kw * s.words());
    p->mask = kernels::aligned_words(p->nmask);
    std::copy(weight_mask, weight_mask + p->nmask, p->mask.get());
    p->words = kernels::aligned_words(p->nwords);
    std::copy(w, w + p->nwords, p->words.get());
    return p;
  }
  switch (isa) {
#if defined(ONEBIT_HAVE_X86)
    case Isa::avx2: kernels::prepare_weights_avx2(w, s, *p, threads); break;
    case Isa::avx512: kernels::prepare_weights_avx512(w, s, *p, threads); break;
#endif
    default: {
      p->nwords = static_cast<size_t>(cout * kh * kw * s.words());
      p->words = kernels::aligned_words(p->nwords);
      std::copy(w, w + p->nwords, p->words.get());
    }
  }
  return p;
}

void bdense(const uint64_t* x, const uint64_t* w, int64_t n, int64_t in_features, int64_t cout,
            const OutputStage& stage, void* out, Isa isa, int threads, const PreparedWeights* prepared,
            const uint64_t* weight_mask) {
  // A dense layer is a 1x1 convolution over a 1x1 image: (N,1,1,W64) x (Cout,1,1,W64).
  BConvArgs a;
  a.x = x;
  a.w = w;
  a.s.n = n;
  a.s.cin = in_features;
  a.s.cout = cout;
  a.stage = stage;
  a.out = out;
  a.prepared = prepared;
  a.weight_mask = weight_mask;
  bconv2d(a, isa, threads);
}

namespace kernels {
std::shared_ptr<uint64_t> aligned_words(size_t n) {
  const size_t bytes = ((n ? n : 1) * sizeof(uint64_t) + 63) / 64 * 64;
  auto* p = static_cast<uint64_t*>(std::aligned_alloc(64, bytes));
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<uint64_t>(p, [](uint64_t* q) { std::free(q); });
}
}  // namespace kernels

double popcount_peak(Isa isa, double seconds, const std::string& method) {
  check_isa(isa);
  isa = kernel_isa(isa);
  const bool ok = method.empty() ||
                  (isa == Isa::avx2 ? (method == "split" || method == "lut" || method == "popcnt")
                   : isa == Isa::avx512 ? method == "vpopcntq"
                                        : method == "builtin");
  if (!ok)
    fail("popcount method '" + method + "' is unknown for ISA " + isa_name(isa) +
         " (scalar: builtin; avx2: split, lut, popcnt; avx512: vpopcntq)");
  // 2 x 2 KiB operands: L1 resident, long enough to hide loop overhead.
  constexpr int64_t kWords = 256;
  std::vector<uint64_t> av(kWords), bv(kWords);
  uint64_t r = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < kWords; ++i) {
    r ^= r << 13; r ^= r >> 7; r ^= r << 17;
    av[i] = r;
    bv[i] = r * 0xBF58476D1CE4E5B9ull;
  }
  auto loop = [&](int64_t iters) -> uint64_t {
    switch (isa) {
#if defined(ONEBIT_HAVE_X86)
      case Isa::avx2:
        if (method == "popcnt") return kernels::popcount_loop_avx2_popcnt(av.data(), bv.data(), kWords, iters);
        if (method == "lut") return kernels::popcount_loop_avx2_lut(av.data(), bv.data(), kWords, iters);
        return kernels::popcount_loop_avx2(av.data(), bv.data(), kWords, iters);
      case Isa::avx512: return kernels::popcount_loop_avx512(av.data(), bv.data(), kWords, iters);
#endif
      default: return kernels::popcount_loop_scalar(av.data(), bv.data(), kWords, iters);
    }
  };
  using clock = std::chrono::steady_clock;
  int64_t iters = 64;
  double best = 0.0;
  const auto start = clock::now();
  volatile uint64_t sink = 0;
  // Repeat short timed runs; keep the best rate (the peak, not the average under noise).
  while (std::chrono::duration<double>(clock::now() - start).count() < seconds) {
    const auto t0 = clock::now();
    sink = sink + loop(iters);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt < 1e-3) {
      iters *= 2;
      continue;
    }
    best = std::max(best, static_cast<double>(iters) * kWords * 64 / dt);
  }
  (void)sink;
  return best;
}

}  // namespace onebit
