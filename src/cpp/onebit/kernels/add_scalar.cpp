// Scalar reference residual add kernels.
#include "onebit/kernels/add_kernels.h"

namespace onebit::kernels {

void add_int8_scalar(const int8_t* a, const int8_t* b, int8_t* y, int32_t ma, int32_t mb,
                     int shift, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) y[i] = add_int8_one(a[i], b[i], ma, mb, shift);
}

void add_f32_scalar(const float* a, const float* b, float* y, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) y[i] = a[i] + b[i];
}

}  // namespace onebit::kernels
