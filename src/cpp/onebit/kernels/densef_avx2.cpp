// AVX2 float32 dense layer: lane j of one ymm accumulator is the reference's acc[j], so the
// result equals densef_scalar.cpp bit for bit. Four output features share each x load.
// The tail is a masked load (zeros beyond `in`), matching the reference's zero products.
#include <immintrin.h>

#include "onebit/kernels/densef_kernels.h"

namespace onebit::kernels {

namespace {

inline float reduce8(__m256 v) {
  const __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  // t = (a0+a4, a1+a5, a2+a6, a3+a7)
  const __m128 t2 = _mm_add_ps(t, _mm_movehl_ps(t, t));
  // t2[0] = (a0+a4)+(a2+a6), t2[1] = (a1+a5)+(a3+a7)
  return _mm_cvtss_f32(_mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1)));
}

}  // namespace

void dense_f32_avx2(const float* x, const float* w, const float* bias, float* y, int64_t in,
                    int64_t out, int64_t b0, int64_t b1) {
  const int64_t ob = (out + 3) / 4;
  const int64_t full = in / 8 * 8;
  const int rem = static_cast<int>(in - full);
  alignas(32) int32_t mbits[8];
  for (int j = 0; j < 8; ++j) mbits[j] = j < rem ? -1 : 0;
  const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(mbits));
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t n = b / ob, o0 = b % ob * 4;
    const int64_t no = out - o0 < 4 ? out - o0 : 4;
    const float* xr = x + n * in;
    const float* w0 = w + o0 * in;
    // Rows past `out` alias row o0 (computed, never stored) to keep the loop branch-free.
    const float* w1 = no > 1 ? w0 + in : w0;
    const float* w2 = no > 2 ? w0 + 2 * in : w0;
    const float* w3 = no > 3 ? w0 + 3 * in : w0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < full; i += 8) {
      const __m256 xv = _mm256_loadu_ps(xr + i);
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(xv, _mm256_loadu_ps(w0 + i)));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(xv, _mm256_loadu_ps(w1 + i)));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(xv, _mm256_loadu_ps(w2 + i)));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(xv, _mm256_loadu_ps(w3 + i)));
    }
    if (rem) {
      const __m256 xv = _mm256_maskload_ps(xr + full, mask);
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(xv, _mm256_maskload_ps(w0 + full, mask)));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(xv, _mm256_maskload_ps(w1 + full, mask)));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(xv, _mm256_maskload_ps(w2 + full, mask)));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(xv, _mm256_maskload_ps(w3 + full, mask)));
    }
    float* yr = y + n * out + o0;
    yr[0] = reduce8(a0) + bias[o0];
    if (no > 1) yr[1] = reduce8(a1) + bias[o0 + 1];
    if (no > 2) yr[2] = reduce8(a2) + bias[o0 + 2];
    if (no > 3) yr[3] = reduce8(a3) + bias[o0 + 3];
  }
}

}  // namespace onebit::kernels
