// Per-ISA int8 convolution kernels (declarations). Arguments are validated by conv8.cpp; the
// output stage is the shared one (output_stage.h, output_avx2.h).
#pragma once
#include <cstdint>

#include "onebit/conv8.h"

namespace onebit::kernels {

// Reads a.w (OHWI) and a.zero_point directly: the executable spec.
void conv8_scalar(const Conv8Args& a, int threads);
// One multiply-add per step over L1-resident int8 rows; returns the multiply-adds done.
int64_t mac_loop_scalar(int64_t iters);
#if defined(ONEBIT_HAVE_X86)
void conv8_avx2(const Conv8Args& a, const Conv8Prepared& p, int threads);
void conv8_avxvnni(const Conv8Args& a, const Conv8Prepared& p, int threads);
void conv8_avx512(const Conv8Args& a, const Conv8Prepared& p, int threads);
int64_t mac_loop_avx2(int64_t iters);
int64_t mac_loop_avxvnni(int64_t iters);
int64_t mac_loop_avx512(int64_t iters);
#endif

}  // namespace onebit::kernels
