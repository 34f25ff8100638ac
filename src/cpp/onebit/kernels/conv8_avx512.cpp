// AVX-512 VNNI int8 convolution: conv8_vnni.h with 512-bit vpdpbusd (16 int32 lanes, up to 4
// channel vectors x 6 pixels = 24 of the 32 zmm registers as accumulators).
#include "onebit/kernels/conv8_vnni.h"

namespace onebit::kernels {

namespace {

struct V512 {
  using reg = __m512i;
  static constexpr int L = 16;
  static constexpr int NBMAX = 4;
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
  static void store_sub(int32_t* d, reg acc, reg c) { _mm512_storeu_si512(d, _mm512_sub_epi32(acc, c)); }
};

}  // namespace

void conv8_avx512(const Conv8Args& a, const Conv8Prepared& p, int threads) {
  conv8_vnni<V512>(a, p, threads);
}

int64_t mac_loop_avx512(int64_t iters) {
  // The kernel's inner step: vpdpbusd zmm of a broadcast quad with a weight vector; 24
  // independent accumulators (6 pixels x 4 vectors), 64 multiply-adds each. Each step depends on
  // its accumulator, so nothing can be hoisted out of the loop.
  __m512i acc[24];
  for (int k = 0; k < 24; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i w0 = _mm512_set1_epi8(3), w1 = _mm512_set1_epi8(-5), u = _mm512_set1_epi8(7);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) {
      acc[2 * k] = _mm512_dpbusd_epi32(acc[2 * k], u, w0);
      acc[2 * k + 1] = _mm512_dpbusd_epi32(acc[2 * k + 1], u, w1);
    }
  }
  __m512i s = acc[0];
  for (int k = 1; k < 24; ++k) s = _mm512_add_epi32(s, acc[k]);
  volatile int32_t sink = _mm512_reduce_add_epi32(s);
  (void)sink;
  return iters * 24 * 64;
}

}  // namespace onebit::kernels
