// Per-ISA float32 dense kernels (declarations); each computes flat items [b0, b1) of
// n * ceil(out / 4) blocks of four output features. bias is never null (zeros when absent).
#pragma once
#include <cstdint>

namespace onebit::kernels {

void dense_f32_scalar(const float* x, const float* w, const float* bias, float* y, int64_t in,
                      int64_t out, int64_t b0, int64_t b1);
#if defined(ONEBIT_HAVE_X86)
void dense_f32_avx2(const float* x, const float* w, const float* bias, float* y, int64_t in,
                    int64_t out, int64_t b0, int64_t b1);
#endif

}  // namespace onebit::kernels
