// AVX-512 VNNI int8 convolution: conv8_vnni.h with 512-bit vpdpbusd (16 int32 lanes, up to 4
// channel vectors x 6 pixels = 24 of the 32 zmm registers as accumulators).
#include <stdexcept>

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
  // The kernel's inner step: vpdpbusd zmm of a broadcast quad with a weight vector, on 24
  // independent accumulators (zmm8-zmm31; 6 pixels x 4 vectors), 64 multiply-adds each. Written
  // in asm so that the accumulators stay in registers: from intrinsics GCC stores such a set to
  // the stack on every step, and the loop then times the stores, not the multiply-adds.
#if defined(__AVX512F__)
  if (iters <= 0) return 0;
  const __m512i w0 = _mm512_set1_epi8(3), w1 = _mm512_set1_epi8(-5), u = _mm512_set1_epi8(7);
  int64_t n = iters;
  asm volatile(
      "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"
      "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"
      "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"
      "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"
      "vpxord %%zmm12, %%zmm12, %%zmm12\n\t"
      "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"
      "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
      "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
      "vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
      "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
      "vpxord %%zmm18, %%zmm18, %%zmm18\n\t"
      "vpxord %%zmm19, %%zmm19, %%zmm19\n\t"
      "vpxord %%zmm20, %%zmm20, %%zmm20\n\t"
      "vpxord %%zmm21, %%zmm21, %%zmm21\n\t"
      "vpxord %%zmm22, %%zmm22, %%zmm22\n\t"
      "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
      "vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
      "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
      "vpxord %%zmm26, %%zmm26, %%zmm26\n\t"
      "vpxord %%zmm27, %%zmm27, %%zmm27\n\t"
      "vpxord %%zmm28, %%zmm28, %%zmm28\n\t"
      "vpxord %%zmm29, %%zmm29, %%zmm29\n\t"
      "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
      "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
      "1:\n\t"
      "vpdpbusd %[w0], %[u], %%zmm8\n\t"
      "vpdpbusd %[w1], %[u], %%zmm9\n\t"
      "vpdpbusd %[w0], %[u], %%zmm10\n\t"
      "vpdpbusd %[w1], %[u], %%zmm11\n\t"
      "vpdpbusd %[w0], %[u], %%zmm12\n\t"
      "vpdpbusd %[w1], %[u], %%zmm13\n\t"
      "vpdpbusd %[w0], %[u], %%zmm14\n\t"
      "vpdpbusd %[w1], %[u], %%zmm15\n\t"
      "vpdpbusd %[w0], %[u], %%zmm16\n\t"
      "vpdpbusd %[w1], %[u], %%zmm17\n\t"
      "vpdpbusd %[w0], %[u], %%zmm18\n\t"
      "vpdpbusd %[w1], %[u], %%zmm19\n\t"
      "vpdpbusd %[w0], %[u], %%zmm20\n\t"
      "vpdpbusd %[w1], %[u], %%zmm21\n\t"
      "vpdpbusd %[w0], %[u], %%zmm22\n\t"
      "vpdpbusd %[w1], %[u], %%zmm23\n\t"
      "vpdpbusd %[w0], %[u], %%zmm24\n\t"
      "vpdpbusd %[w1], %[u], %%zmm25\n\t"
      "vpdpbusd %[w0], %[u], %%zmm26\n\t"
      "vpdpbusd %[w1], %[u], %%zmm27\n\t"
      "vpdpbusd %[w0], %[u], %%zmm28\n\t"
      "vpdpbusd %[w1], %[u], %%zmm29\n\t"
      "vpdpbusd %[w0], %[u], %%zmm30\n\t"
      "vpdpbusd %[w1], %[u], %%zmm31\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [n] "+r"(n)
      : [u] "x"(u), [w0] "x"(w0), [w1] "x"(w1)
      : "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
        "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",
        "xmm28", "xmm29", "xmm30", "xmm31", "cc");
  return iters * 24 * 64;
#else  // a test build that emulates the AVX-512 intrinsics (no zmm registers to name)
  (void)iters;
  throw std::logic_error("mac_loop_avx512: built without AVX-512");
#endif
}

}  // namespace onebit::kernels
