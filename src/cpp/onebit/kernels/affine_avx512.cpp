// AVX-512 per-channel affine map (onebit/affine.h): 16 channels per multiply and add (separate
// instructions: the scalar reference's two roundings), the channel tail masked.
#include <immintrin.h>

#include "onebit/affine.h"

namespace onebit::kernels {

void affine_f32_avx512(const float* x, const float* scale, const float* bias, float* y, int64_t c,
                       int64_t p0, int64_t p1) {
  const int64_t full = c / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (c - full)) - 1);
  for (int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * c;
    float* yp = y + p * c;
    for (int64_t k = 0; k < full; k += 16)
      _mm512_storeu_ps(yp + k, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(xp + k), _mm512_loadu_ps(scale + k)),
                                             _mm512_loadu_ps(bias + k)));
    if (tail) {
      const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, xp + full), _mm512_maskz_loadu_ps(tail, scale + full));
      _mm512_mask_storeu_ps(yp + full, tail, _mm512_add_ps(v, _mm512_maskz_loadu_ps(tail, bias + full)));
    }
  }
}

}  // namespace onebit::kernels
