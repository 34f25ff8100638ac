// bconv2d / bdense dispatcher: checks geometry and stage parameters, then runs the kernel of the
// requested ISA's row in the op's table (onebit/kernel_table.h): plain and pruned layers, their
// weight preparation and popcount_peak's loop. Kernels trust their arguments; every check lives here.
#include "onebit/bconv.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "onebit/kernel_table.h"

namespace onebit {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

// Uniform entry points for the tables (the kernels proper live in kernels/bconv_<isa>.cpp).
void plain_scalar(const BConvArgs& a, int threads) {
  BConvArgs b = a;
  if (a.prepared) b.w = a.prepared->words.get();  // scalar layout = the packed layout
  kernels::bconv_scalar(b, threads);
}
void masked_scalar(const BConvArgs& a, int threads) {
  BConvArgs b = a;
  if (a.prepared) {
    b.w = a.prepared->words.get();
    b.weight_mask = a.prepared->mask.get();
  }
  kernels::bconv_masked_scalar(b, threads);
}
// Packed layout as it is (scalar and neon kernels read it directly).
void prepare_packed(const uint64_t* w, const BConvShape& s, PreparedWeights& p, int) {
  p.nwords = static_cast<size_t>(s.cout * s.kh * s.kw * s.words());
  p.words = kernels::aligned_words(p.nwords);
  std::copy(w, w + p.nwords, p.words.get());
}
using MaskedPrepare = void (*)(const uint64_t*, const uint64_t*, const BConvShape&, PreparedWeights&, int);
void prepare_masked_packed(const uint64_t* w, const uint64_t* mask, const BConvShape& s, PreparedWeights& p,
                           int threads) {
  p.masked = true;  // the packed weights and mask as they are
  prepare_packed(w, s, p, threads);
  p.nmask = p.nwords;
  p.mask = kernels::aligned_words(p.nmask);
  std::copy(mask, mask + p.nmask, p.mask.get());
}
#if defined(ONEBIT_HAVE_X86)
void masked_avx2(const BConvArgs& a, int threads) {
  if (a.prepared) {
    kernels::bconv_masked_avx2(a, threads);
    return;
  }
  PreparedWeights local;  // unprepared call: build the list layout now
  kernels::prepare_masked_list(a.w, a.weight_mask, a.s, local, threads);
  BConvArgs b = a;
  b.prepared = &local;
  b.weight_mask = nullptr;
  kernels::bconv_masked_avx2(b, threads);
}
#endif
#if defined(ONEBIT_HAVE_NEON)
// The packed weights and mask as they are plus the NEON group layout (which words and channels
// each group of the NEON masked kernel skips).
void prepare_masked_neon(const uint64_t* w, const uint64_t* mask, const BConvShape& s, PreparedWeights& p,
                         int threads) {
  prepare_masked_packed(w, mask, s, p, threads);
  kernels::prepare_masked_groups(mask, s, kernels::masked_group_channels_neon(), p);
}
void masked_neon(const BConvArgs& a, int threads) {
  if (a.prepared) {
    kernels::bconv_masked_neon(a, threads);
    return;
  }
  PreparedWeights local;  // unprepared call: the caller's words and mask, the group layout built now
  local.masked = true;
  local.words = std::shared_ptr<uint64_t>(std::shared_ptr<uint64_t>(), const_cast<uint64_t*>(a.w));
  local.mask = std::shared_ptr<uint64_t>(std::shared_ptr<uint64_t>(), const_cast<uint64_t*>(a.weight_mask));
  kernels::prepare_masked_groups(a.weight_mask, a.s, kernels::masked_group_channels_neon(), local);
  BConvArgs b = a;
  b.prepared = &local;
  b.weight_mask = nullptr;
  kernels::bconv_masked_neon(b, threads);
}
#endif

using Kernel = void (*)(const BConvArgs&, int);
using Prepare = void (*)(const uint64_t*, const BConvShape&, PreparedWeights&, int);
using PopLoop = uint64_t (*)(const uint64_t*, const uint64_t*, int64_t, int64_t);

// Binary conv / dense, packed weights or weights prepared for the ISA.
const KernelTable<Kernel> bconv_table("bconv", {
    kernel_row(Isa::scalar, &plain_scalar),
    ONEBIT_AVX2_AVX512_ROWS(&kernels::bconv_avx2, &kernels::bconv_avx512)
    ONEBIT_NEON_ROW(&kernels::bconv_neon)
});
// Weight preparation for bconv_table's kernels (the layout each one reads).
const KernelTable<Prepare> bconv_prepare_table("bconv_prepare", {
    kernel_row(Isa::scalar, &prepare_packed),
    ONEBIT_AVX2_AVX512_ROWS(&kernels::prepare_weights_avx2, &kernels::prepare_weights_avx512)
    fallback_row(Isa::neon, Isa::scalar),  // the NEON kernel reads the packed layout
});
// Pruned layers. No AVX-512 masked kernel: AVX-512 CPUs run the AVX2 list kernel (docs/kernels.md).
const KernelTable<Kernel> bconv_masked_table("bconv_masked", {
    kernel_row(Isa::scalar, &masked_scalar),
    ONEBIT_AVX2_ROWS(&masked_avx2)
    ONEBIT_NEON_ROW(&masked_neon)  // packed words + mask and the group layout
});
const KernelTable<MaskedPrepare> bconv_masked_prepare_table("bconv_masked_prepare", {
    kernel_row(Isa::scalar, &prepare_masked_packed),
    ONEBIT_AVX2_ROWS(&kernels::prepare_masked_list)
    ONEBIT_NEON_ROW(&prepare_masked_neon)
});
// popcount_peak's timed loop: the popcount each ISA's conv kernel uses.
const KernelTable<PopLoop> popcount_loop_table("popcount_loop", {
    kernel_row(Isa::scalar, &kernels::popcount_loop_scalar),
    ONEBIT_AVX2_AVX512_ROWS(&kernels::popcount_loop_avx2, &kernels::popcount_loop_avx512)
    ONEBIT_NEON_ROW(&kernels::popcount_loop_neon)
});

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
  if (s.pad < 0 || s.pad_end < 0)
    fail("padding must be >= 0, got " + std::to_string(s.pad) + " before and " + std::to_string(s.pad_end) +
         " after the input");
  if (std::max(s.pad, s.pad_end) >= std::min(s.kh, s.kw))
    fail("padding " + std::to_string(s.pad) +
         (s.pad_end == s.pad ? "" : " / " + std::to_string(s.pad_end) + " (before / after the input)") +
         " must be smaller than the kernel size (" + std::to_string(s.kh) + "x" + std::to_string(s.kw) + ")");
  if (s.pad_value != 0 && s.pad_value != 1)
    fail("pad_value must be 0 (true zero) or 1 (+1, one-padding), got " + std::to_string(s.pad_value));
  const int64_t span = s.pad + s.pad_end;
  if (s.h + span < s.kh || s.w + span < s.kw)
    fail("kernel " + std::to_string(s.kh) + "x" + std::to_string(s.kw) + " is larger than the padded input " +
         std::to_string(s.h + span) + "x" + std::to_string(s.w + span));
  if (s.k_bits() > (int64_t{1} << 31) - 1) fail("K = KH*KW*Cin exceeds the int32 accumulator");
  if (!a.x || (!a.w && !a.prepared) || !a.out) fail("null input, weight or output pointer");
  if (a.weight_mask && a.prepared)
    fail("weight_mask cannot be combined with prepared weights (pass it to prepare_weights instead)");
  check_output_stage(a.stage, s.cout);
  require_isa(isa);
  isa = kernel_isa(isa);  // avxvnni runs the avx2 binary kernels (the tables' avxvnni rows say so)
  if (const PreparedWeights* p = a.prepared) {
    if (p->isa != isa)
      fail(std::string("weights were prepared for ISA '") + isa_name(p->isa) + "' but the call uses '" +
           isa_name(isa) + "'");
    if (p->cout != s.cout || p->kh != s.kh || p->kw != s.kw || p->cin != s.cin)
      fail("prepared weights are for a (" + std::to_string(p->cout) + ", " + std::to_string(p->kh) + ", " +
           std::to_string(p->kw) + ", " + std::to_string(p->cin) + "-channel) layer, not this one");
  }
  if (a.weight_mask) check_weight_mask(a.w, a.weight_mask, s.cout, s.kh * s.kw, s.cin);
  const bool masked = a.weight_mask || (a.prepared && a.prepared->masked);  // pruned layer
  const Kernel kernel = masked ? bconv_masked_table.get(isa) : bconv_table.get(isa);
  if (s.pad_value == 1 && span > 0 && isa != Isa::scalar) {
    // One-padding: a padded tap is a pixel of +1s, i.e. zero words. The input framed by zero
    // words, convolved without padding, is exactly the one-padded convolution (docs/format.md
    // §3), so every SIMD kernel (plain, masked, 3x3 and 1x1 paths) runs it unchanged. The
    // scalar reference computes it tap by tap instead (kernels/bconv_scalar.cpp).
    static thread_local std::vector<uint64_t> framed;
    const int64_t W64 = s.words(), hp = s.h + span, wp = s.w + span;
    framed.assign(static_cast<size_t>(s.n * hp * wp * W64), 0);
    for (int64_t r = 0; r < s.n * s.h; ++r) {
      const int64_t n = r / s.h, y = r % s.h;
      std::copy(a.x + r * s.w * W64, a.x + (r + 1) * s.w * W64,
                framed.data() + ((n * hp + y + s.pad) * wp + s.pad) * W64);
    }
    BConvArgs b = a;
    b.x = framed.data();
    b.s.h = hp;
    b.s.w = wp;
    b.s.pad = b.s.pad_end = 0;
    b.s.pad_value = 0;
    kernel(b, threads);
    return;
  }
  kernel(a, threads);
}

std::shared_ptr<const PreparedWeights> prepare_bconv_weights(const uint64_t* w, int64_t cout, int64_t kh,
                                                             int64_t kw, int64_t cin, Isa isa, int threads,
                                                             const uint64_t* weight_mask) {
  if (!w) fail("null weight pointer");
  if (cout < 1 || kh < 1 || kw < 1 || cin < 1) fail("weights need Cout, KH, KW, in_channels >= 1");
  require_isa(isa);
  isa = kernel_isa(isa);  // avxvnni runs the avx2 binary kernels (the tables' avxvnni rows say so)
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
  if (weight_mask)  // pruned layer
    bconv_masked_prepare_table.get(isa)(w, weight_mask, s, *p, threads);
  else
    bconv_prepare_table.get(isa)(w, s, *p, threads);
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

uint64_t popcount_loop(Isa isa, const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
  if (words < 0 || words % 4 != 0) fail("popcount_loop needs a multiple of 4 words, got " + std::to_string(words));
  if (iters < 0) fail("popcount_loop needs iters >= 0, got " + std::to_string(iters));
  if (words && (!a || !b)) fail("null operand pointer");
  return popcount_loop_table.get(kernel_isa(isa))(a, b, words, iters);
}

double popcount_peak(Isa isa, double seconds, const std::string& method) {
  require_isa(isa);
  isa = kernel_isa(isa);  // avxvnni runs the avx2 binary kernels (the tables' avxvnni rows say so)
  const bool ok = method.empty() ||
                  (isa == Isa::avx2 ? (method == "split" || method == "lut" || method == "popcnt")
                   : isa == Isa::avx512 ? method == "vpopcntq"
                   : isa == Isa::neon   ? method == "vcnt"
                                        : method == "builtin");
  if (!ok)
    fail("popcount method '" + method + "' is unknown for ISA " + isa_name(isa) +
         " (scalar: builtin; avx2: split, lut, popcnt; avx512: vpopcntq; neon: vcnt)");
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
#if defined(ONEBIT_HAVE_X86)  // the AVX2 alternatives popcount_peak can time
    if (isa == Isa::avx2 && method == "popcnt")
      return kernels::popcount_loop_avx2_popcnt(av.data(), bv.data(), kWords, iters);
    if (isa == Isa::avx2 && method == "lut") return kernels::popcount_loop_avx2_lut(av.data(), bv.data(), kWords, iters);
#endif
    return popcount_loop(isa, av.data(), bv.data(), kWords, iters);
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
