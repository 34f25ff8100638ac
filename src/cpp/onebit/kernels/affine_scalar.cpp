// Scalar reference per-channel affine map (onebit/affine.h); -ffp-contract=off keeps the two
// roundings.
#include "onebit/affine.h"

namespace onebit::kernels {

void affine_f32_scalar(const float* x, const float* scale, const float* bias, float* y, int64_t c,
                       int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t k = 0; k < c; ++k) {
      const float v = x[p * c + k] * scale[k];
      y[p * c + k] = v + bias[k];
    }
}

}  // namespace onebit::kernels
