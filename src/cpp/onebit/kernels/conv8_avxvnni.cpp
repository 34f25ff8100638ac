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
  // The kernel's inner step: vpdpbusd ymm; 12 independent accumulators (6 pixels x 2 vectors),
  // 32 multiply-adds each, in named variables with distinct
  // start values (GCC keeps an array of them in memory; equal ones would merge).
  __m256i w0 = _mm256_set1_epi8(3), w1 = _mm256_set1_epi8(-5), u = _mm256_set1_epi8(7);
  __m256i a0 = _mm256_set1_epi32(0), a1 = _mm256_set1_epi32(1), a2 = _mm256_set1_epi32(2),
          a3 = _mm256_set1_epi32(3), a4 = _mm256_set1_epi32(4), a5 = _mm256_set1_epi32(5),
          a6 = _mm256_set1_epi32(6), a7 = _mm256_set1_epi32(7), a8 = _mm256_set1_epi32(8),
          a9 = _mm256_set1_epi32(9), a10 = _mm256_set1_epi32(10), a11 = _mm256_set1_epi32(11);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(w0), "+x"(w1), "+x"(u));
    a0 = _mm256_dpbusd_avx_epi32(a0, u, w0);
    a1 = _mm256_dpbusd_avx_epi32(a1, u, w1);
    a2 = _mm256_dpbusd_avx_epi32(a2, u, w0);
    a3 = _mm256_dpbusd_avx_epi32(a3, u, w1);
    a4 = _mm256_dpbusd_avx_epi32(a4, u, w0);
    a5 = _mm256_dpbusd_avx_epi32(a5, u, w1);
    a6 = _mm256_dpbusd_avx_epi32(a6, u, w0);
    a7 = _mm256_dpbusd_avx_epi32(a7, u, w1);
    a8 = _mm256_dpbusd_avx_epi32(a8, u, w0);
    a9 = _mm256_dpbusd_avx_epi32(a9, u, w1);
    a10 = _mm256_dpbusd_avx_epi32(a10, u, w0);
    a11 = _mm256_dpbusd_avx_epi32(a11, u, w1);
  }
  const __m256i s = sum_accumulators([](__m256i x, __m256i y) { return _mm256_add_epi32(x, y); },
    a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
  volatile int32_t sink = _mm256_extract_epi32(s, 0);
  (void)sink;
  return iters * 12 * 32;
}

}  // namespace onebit::kernels
