// Per-ISA int8 and float32 depthwise convolution kernels (declarations). Arguments are validated by
// dwconv8.cpp; the output stage is the shared one (output_stage.h, output_avx2.h,
// output_neon.h). Every kernel computes the exact int32 sums of the scalar one.
#pragma once
#include <cstdint>

#include "onebit/dwconv8.h"

namespace onebit::kernels {

void dwconv8_scalar(const DwConv8Args& a, int threads);
void dwconv_f32_scalar(const DwConvF32Args& a, int threads);
#if defined(ONEBIT_HAVE_X86)
void dwconv8_avx2(const DwConv8Args& a, int threads);
void dwconv8_avx512(const DwConv8Args& a, int threads);
void dwconv_f32_avx2(const DwConvF32Args& a, int threads);
void dwconv_f32_avx512(const DwConvF32Args& a, int threads);
#endif
#if defined(ONEBIT_HAVE_NEON)
void dwconv8_neon(const DwConv8Args& a, int threads);
#if defined(__aarch64__)
void dwconv_f32_neon(const DwConvF32Args& a, int threads);
#endif
#endif

// Work units (multiply-adds) per thread below which a call stays on one thread.
constexpr int64_t kDwMinWork = int64_t{1} << 18;

}  // namespace onebit::kernels
