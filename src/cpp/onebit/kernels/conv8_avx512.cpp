// AVX-512 VNNI int8 convolution: conv8_vnni.h with 512-bit vpdpbusd (16 int32 lanes, up to 4
// channel vectors x 6 pixels = 24 of the 32 zmm registers as accumulators).
#include "onebit/kernels/conv8_vnni.h"

namespace onebit::kernels {

namespace {

// The exact int8 stage q = clamp((y*M + B + 2^(S-1)) >> S, -127, 127) in int64 lanes, 16
// channels per step: vpmuldq of the even and the odd int32 lanes (|y*M| <= 2^62), + B + 2^(S-1)
// (|.| < 2^32), vpsraq, clamp, the odd results blended back into the odd int32 lanes; nothing
// wraps, so it equals stage_int8 (output_stage.h) for every y.
class Int8Stage512 {
 public:
  static constexpr bool kFast = true;  // as fast as the int32 path: no per-row range test
  Int8Stage512(const OutputStage* st, int64_t cout) : st_(st), cout_(cout) {
    if (!st) return;
    const int64_t n = (cout + 15) / 16 * 16;
    m_.assign(static_cast<size_t>(n), 0);
    be_.assign(static_cast<size_t>(n / 2), 0);
    bo_.assign(static_cast<size_t>(n / 2), 0);
    for (int64_t c = 0; c < cout; ++c) {
      m_[c] = st->multiplier[c];
      (c % 2 ? bo_ : be_)[c / 2] = int64_t{st->bias[c]} + (int64_t{1} << (st->shift - 1));
    }
  }
  // Writes npix pixels (rows of ld >= round_up(cout, 16) accumulators) from flat pixel pix0 on.
  bool run(const int32_t* rb, int64_t ld, int64_t npix, int64_t pix0, int8_t* out) const {
    const __m128i sh = _mm_cvtsi32_si128(st_->shift);
    const __m512i lo = _mm512_set1_epi64(-127), hi = _mm512_set1_epi64(127);
    for (int64_t p = 0; p < npix; ++p) {
      const int32_t* y = rb + p * ld;
      int8_t* o = out + (pix0 + p) * cout_;
      for (int64_t c = 0; c < cout_; c += 16) {
        const __m512i yv = _mm512_loadu_si512(y + c), mv = _mm512_loadu_si512(m_.data() + c);
        __m512i e = _mm512_add_epi64(_mm512_mul_epi32(yv, mv), _mm512_loadu_si512(be_.data() + c / 2));
        __m512i d = _mm512_add_epi64(
            _mm512_mul_epi32(_mm512_srli_epi64(yv, 32), _mm512_srli_epi64(mv, 32)),
            _mm512_loadu_si512(bo_.data() + c / 2));
        e = _mm512_min_epi64(_mm512_max_epi64(_mm512_sra_epi64(e, sh), lo), hi);
        d = _mm512_min_epi64(_mm512_max_epi64(_mm512_sra_epi64(d, sh), lo), hi);
        const __m128i q = _mm512_cvtepi32_epi8(_mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(d, 32)));
        store_bytes16(o + c, q, cout_ - c);
      }
    }
    return true;
  }

 private:
  const OutputStage* st_;
  int64_t cout_;
  Scratch<int32_t> m_;
  Scratch<int64_t> be_, bo_;
};

struct V512 {
  using reg = __m512i;
  static constexpr int L = 16;
  static constexpr int NBMAX = 4;
  using Int8Stage = Int8Stage512;
  // Pixels per tile for nb channel vectors: 24 accumulators at most (of 32 registers).
  static constexpr int pmax(int nb) { return nb >= 4 ? 6 : nb == 3 ? 8 : nb == 2 ? 12 : 16; }
  static reg zero() { return _mm512_setzero_si512(); }
  static reg load(const int8_t* p) { return _mm512_loadu_si512(p); }
  static reg load32(const int32_t* p) { return _mm512_loadu_si512(p); }
  static reg bcast(const uint8_t* p) {
    int32_t q;
    std::memcpy(&q, p, 4);
    return _mm512_set1_epi32(q);
  }
  static reg dp(reg acc, reg u, reg w) { return _mm512_dpbusd_epi32(acc, u, w); }
  static void store_sub(int32_t* d, reg acc, reg c) {
    _mm512_storeu_si512(d, _mm512_sub_epi32(acc, c));
  }
  static reg sub(reg a, reg b) { return _mm512_sub_epi32(a, b); }
  // the fused int8 stage on clamped y (VnniCtx): int32 lanes, then 16 int8
  static reg requant(reg y, reg lo, reg hi, reg m, reg b, __m128i sh) {
    y = _mm512_min_epi32(_mm512_max_epi32(y, lo), hi);
    const reg v = _mm512_sra_epi32(_mm512_add_epi32(_mm512_mullo_epi32(y, m), b), sh);
    return _mm512_max_epi32(v, _mm512_set1_epi32(-127));  // store_q8 saturates at 127
  }
  static void store_q8(int8_t* d, reg v, int64_t valid) { store_bytes16(d, _mm512_cvtsepi32_epi8(v), valid); }
};

}  // namespace

void conv8_avx512(const Conv8Args& a, const Conv8Prepared& p, int threads) {
  conv8_vnni<V512>(a, p, threads);
}

int64_t mac_loop_avx512(int64_t iters) {
  // The kernel's inner step: vpdpbusd zmm of a broadcast quad with a weight vector; 24
  // independent accumulators (6 pixels x 4 vectors), 64 multiply-adds each, in named variables
  // with distinct start values (GCC keeps an array of them in memory; equal ones would merge).
  // Each step depends on its accumulator, so nothing can be hoisted out of the loop.
  const __m512i w0 = _mm512_set1_epi8(3), w1 = _mm512_set1_epi8(-5), u = _mm512_set1_epi8(7);
  __m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2),
          a3 = _mm512_set1_epi32(3), a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5),
          a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7), a8 = _mm512_set1_epi32(8),
          a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10), a11 = _mm512_set1_epi32(11),
          a12 = _mm512_set1_epi32(12), a13 = _mm512_set1_epi32(13), a14 = _mm512_set1_epi32(14),
          a15 = _mm512_set1_epi32(15), a16 = _mm512_set1_epi32(16), a17 = _mm512_set1_epi32(17),
          a18 = _mm512_set1_epi32(18), a19 = _mm512_set1_epi32(19), a20 = _mm512_set1_epi32(20),
          a21 = _mm512_set1_epi32(21), a22 = _mm512_set1_epi32(22), a23 = _mm512_set1_epi32(23);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm512_dpbusd_epi32(a0, u, w0);
    a1 = _mm512_dpbusd_epi32(a1, u, w1);
    a2 = _mm512_dpbusd_epi32(a2, u, w0);
    a3 = _mm512_dpbusd_epi32(a3, u, w1);
    a4 = _mm512_dpbusd_epi32(a4, u, w0);
    a5 = _mm512_dpbusd_epi32(a5, u, w1);
    a6 = _mm512_dpbusd_epi32(a6, u, w0);
    a7 = _mm512_dpbusd_epi32(a7, u, w1);
    a8 = _mm512_dpbusd_epi32(a8, u, w0);
    a9 = _mm512_dpbusd_epi32(a9, u, w1);
    a10 = _mm512_dpbusd_epi32(a10, u, w0);
    a11 = _mm512_dpbusd_epi32(a11, u, w1);
    a12 = _mm512_dpbusd_epi32(a12, u, w0);
    a13 = _mm512_dpbusd_epi32(a13, u, w1);
    a14 = _mm512_dpbusd_epi32(a14, u, w0);
    a15 = _mm512_dpbusd_epi32(a15, u, w1);
    a16 = _mm512_dpbusd_epi32(a16, u, w0);
    a17 = _mm512_dpbusd_epi32(a17, u, w1);
    a18 = _mm512_dpbusd_epi32(a18, u, w0);
    a19 = _mm512_dpbusd_epi32(a19, u, w1);
    a20 = _mm512_dpbusd_epi32(a20, u, w0);
    a21 = _mm512_dpbusd_epi32(a21, u, w1);
    a22 = _mm512_dpbusd_epi32(a22, u, w0);
    a23 = _mm512_dpbusd_epi32(a23, u, w1);
  }
  const __m512i s = sum_accumulators([](__m512i x, __m512i y) { return _mm512_add_epi32(x, y); },
    a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
    a20, a21, a22, a23);
  volatile int32_t sink = _mm512_reduce_add_epi32(s);
  (void)sink;
  return iters * 24 * 64;
}

}  // namespace onebit::kernels
