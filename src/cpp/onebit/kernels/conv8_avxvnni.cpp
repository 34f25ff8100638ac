// AVX-VNNI int8 convolution: conv8_vnni.h with the 256-bit VEX vpdpbusd (8 int32 lanes, up to
// 2 channel vectors x 6 pixels = 12 of the 16 ymm registers as accumulators).
#include "onebit/kernels/conv8_vnni.h"

namespace onebit::kernels {

namespace {

// No int64 vector multiply without AVX-512: the wide int8 stage stays write_stage_avx2's.
struct NoInt8Stage {
  static constexpr bool kFast = false;
  NoInt8Stage(const OutputStage*, int64_t) {}
  bool run(const int32_t*, int64_t, int64_t, int64_t, int8_t*) const { return false; }
};

struct V256 {
  using reg = __m256i;
  static constexpr int L = 8;
  static constexpr int NBMAX = 2;
  using Int8Stage = NoInt8Stage;
  // Pixels per tile for nb channel vectors: 12 accumulators at most (of 16 registers).
  static constexpr int pmax(int nb) { return nb >= 2 ? 6 : 12; }
  static reg zero() { return _mm256_setzero_si256(); }
  static reg load(const int8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static reg load32(const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static reg bcast(const uint8_t* p) {
    int32_t q;
    std::memcpy(&q, p, 4);
    return _mm256_set1_epi32(q);
  }
  static reg dp(reg acc, reg u, reg w) { return _mm256_dpbusd_avx_epi32(acc, u, w); }
  static void store_sub(int32_t* d, reg acc, reg c) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm256_sub_epi32(acc, c));
  }
  static reg sub(reg a, reg b) { return _mm256_sub_epi32(a, b); }
  // the fused int8 stage on clamped y (VnniCtx): int32 lanes, then 8 int8
  static reg requant(reg y, reg lo, reg hi, reg m, reg b, __m128i sh) {
    y = _mm256_min_epi32(_mm256_max_epi32(y, lo), hi);
    const reg v = _mm256_sra_epi32(_mm256_add_epi32(_mm256_mullo_epi32(y, m), b), sh);
    return _mm256_max_epi32(v, _mm256_set1_epi32(-127));  // store_q8's packs saturate at 127
  }
  static void store_q8(int8_t* d, reg v, int64_t valid) {
    const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i q = _mm_packs_epi16(p16, p16);
    if (valid >= 8)
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d), q);
    else
      store_bytes16(d, q, valid);
  }
};

}  // namespace

void conv8_avxvnni(const Conv8Args& a, const Conv8Prepared& p, int threads) {
  conv8_vnni<V256>(a, p, threads);
}

int64_t mac_loop_avxvnni(int64_t iters) {
  // The kernel's inner step: vpdpbusd ymm, on 12 independent accumulators (ymm4-ymm15; 6 pixels
  // x 2 vectors), 32 multiply-adds each; in asm so that they stay in registers (see
  // mac_loop_avx512).
  if (iters <= 0) return 0;
  const __m256i w0 = _mm256_set1_epi8(3), w1 = _mm256_set1_epi8(-5), u = _mm256_set1_epi8(7);
  int64_t n = iters;
  asm volatile(
      "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"
      "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"
      "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"
      "vpxor %%ymm8, %%ymm8, %%ymm8\n\t"
      "vpxor %%ymm9, %%ymm9, %%ymm9\n\t"
      "vpxor %%ymm10, %%ymm10, %%ymm10\n\t"
      "vpxor %%ymm11, %%ymm11, %%ymm11\n\t"
      "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
      "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
      "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"
      "1:\n\t"
      "%{vex%} vpdpbusd %[w0], %[u], %%ymm4\n\t"
      "%{vex%} vpdpbusd %[w1], %[u], %%ymm5\n\t"
      "%{vex%} vpdpbusd %[w0], %[u], %%ymm6\n\t"
      "%{vex%} vpdpbusd %[w1], %[u], %%ymm7\n\t"
      "%{vex%} vpdpbusd %[w0], %[u], %%ymm8\n\t"
      "%{vex%} vpdpbusd %[w1], %[u], %%ymm9\n\t"
      "%{vex%} vpdpbusd %[w0], %[u], %%ymm10\n\t"
      "%{vex%} vpdpbusd %[w1], %[u], %%ymm11\n\t"
      "%{vex%} vpdpbusd %[w0], %[u], %%ymm12\n\t"
      "%{vex%} vpdpbusd %[w1], %[u], %%ymm13\n\t"
      "%{vex%} vpdpbusd %[w0], %[u], %%ymm14\n\t"
      "%{vex%} vpdpbusd %[w1], %[u], %%ymm15\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [n] "+r"(n)
      : [u] "x"(u), [w0] "x"(w0), [w1] "x"(w1)
      : "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
        "xmm14", "xmm15", "cc");
  return iters * 12 * 32;
}

}  // namespace onebit::kernels
