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
#if defined(ONEBIT_HAVE_NEON)
// Baseline NEON, or SDOT where the CPU has the dot product (kernels/conv8_neon.cpp); reads a.w
// (OHWI) and a.zero_point like the scalar kernel.
void conv8_neon(const Conv8Args& a, int threads);
#if defined(__aarch64__)
void conv8_dots_sdot(const int8_t* patch, const int8_t* w, int64_t K16, int64_t cout, const int32_t* corr,
                     int32_t* acc);
#endif
#endif
#if defined(ONEBIT_HAVE_X86)
void conv8_avx2(const Conv8Args& a, const Conv8Prepared& p, int threads);
void conv8_avxvnni(const Conv8Args& a, const Conv8Prepared& p, int threads);
void conv8_avx512(const Conv8Args& a, const Conv8Prepared& p, int threads);
int64_t mac_loop_avx2(int64_t iters);
int64_t mac_loop_avxvnni(int64_t iters);
int64_t mac_loop_avx512(int64_t iters);
#endif

}  // namespace onebit::kernels
