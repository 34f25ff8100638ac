// AVX2 per-channel affine map (onebit/affine.h): 8 channels per multiply and add (separate
// instructions: the scalar reference's two roundings), the channel tail in scalar.
#include <immintrin.h>

#include "onebit/affine.h"

namespace onebit::kernels {

void affine_f32_avx2(const float* x, const float* scale, const float* bias, float* y, int64_t c,
                     int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * c;
    float* yp = y + p * c;
    int64_t k = 0;
    for (; k + 8 <= c; k += 8)
      _mm256_storeu_ps(yp + k, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xp + k), _mm256_loadu_ps(scale + k)),
                                             _mm256_loadu_ps(bias + k)));
    for (; k < c; ++k) {
      const float v = xp[k] * scale[k];
      yp[k] = v + bias[k];
    }
  }
}

}  // namespace onebit::kernels
