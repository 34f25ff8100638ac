// AVX-VNNI int8 convolution: conv8_vnni.h with the 256-bit VEX vpdpbusd (8 int32 lanes, up to
// 2 channel vectors x 6 pixels = 12 of the 16 ymm registers as accumulators).
#include "onebit/kernels/conv8_vnni.h"

namespace onebit::kernels {

namespace {

struct V256 {
  using reg = __m256i;
  static constexpr int L = 8;
  static constexpr int NBMAX = 2;
  // Pixels per tile for nb channel vectors: 12 accumulators at most (of 16 registers).
  static constexpr int pmax(int nb) { return nb >= 2 ? 6 : 12; }
  static reg zero() { return _mm256_setzero_si256(); }
  static reg load(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static reg load32(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static reg bcast(const uint8_t* p) {
    int32_t q;
    std::memcpy(&q, p, 4);
    return _mm256_set1_epi32(q);
  }
  static reg dp(reg acc, reg u, reg w) { return _mm256_dpbusd_avx_epi32(acc, u, w); }
  static void store_sub(int32_t* d, reg acc, reg c) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm256_sub_epi32(acc, c));
  }
};

}  // namespace

void conv8_avxvnni(const Conv8Args& a, const Conv8Prepared& p, int threads) {
  conv8_vnni<V256>(a, p, threads);
}

int64_t mac_loop_avxvnni(int64_t iters) {
  // The kernel's inner step: vpdpbusd ymm; 12 independent accumulators (6 pixels x 2 vectors),
  // 32 multiply-adds each.
  __m256i acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_epi32(k);
  __m256i w0 = _mm256_set1_epi8(3), w1 = _mm256_set1_epi8(-5), u = _mm256_set1_epi8(7);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(w0), "+x"(w1), "+x"(u));
#pragma GCC unroll 6
    for (int k = 0; k < 6; ++k) {
      acc[2 * k] = _mm256_dpbusd_avx_epi32(acc[2 * k], u, w0);
      acc[2 * k + 1] = _mm256_dpbusd_avx_epi32(acc[2 * k + 1], u, w1);
    }
  }
  __m256i s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm256_add_epi32(s, acc[k]);
  volatile int32_t sink = _mm256_extract_epi32(s, 0);
  (void)sink;
  return iters * 12 * 32;
}

}  // namespace onebit::kernels
