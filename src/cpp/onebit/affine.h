// Per-channel float32 affine map over NHWC values (a BatchNorm that folds into no producer):
// y[p, c] = float(x[p, c] * scale[c]) + bias[c], the product rounded, then the sum (two
// roundings, never a fused multiply-add); identical on every ISA.
#pragma once
#include <cstdint>

#include "onebit/isa.h"

namespace onebit {

// x and y hold `pixels` rows of `channels` values (y may be x).
void affine_f32(const float* x, const float* scale, const float* bias, float* y, int64_t pixels,
                int64_t channels, Isa isa, int threads);

namespace kernels {
// Per-ISA kernels: pixels [p0, p1).
void affine_f32_scalar(const float* x, const float* scale, const float* bias, float* y, int64_t c,
                       int64_t p0, int64_t p1);
void affine_f32_avx2(const float* x, const float* scale, const float* bias, float* y, int64_t c,
                     int64_t p0, int64_t p1);
void affine_f32_avx512(const float* x, const float* scale, const float* bias, float* y, int64_t c,
                       int64_t p0, int64_t p1);
}  // namespace kernels

}  // namespace onebit
