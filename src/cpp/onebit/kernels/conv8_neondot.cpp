// SDOT (Armv8.2 dot product) inner loop of the NEON int8 convolution (kernels/conv8_neon.cpp),
// aarch64 only, in its own translation unit compiled with +dotprod: called only when the CPU
// reports HWCAP_ASIMDDP.
#include <arm_neon.h>

#include "onebit/kernels/conv8_kernels.h"

namespace onebit::kernels {

#if defined(__aarch64__)
// acc[o] = sum_k patch[k] * w[o*K16 + k] - corr[o], mod 2^32 (K16 a multiple of 16).
void conv8_dots_sdot(const int8_t* patch, const int8_t* w, int64_t K16, int64_t cout, const int32_t* corr,
                     int32_t* acc) {
  int64_t o = 0;
  for (; o + 4 <= cout; o += 4) {
    int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (int64_t k = 0; k < K16; k += 16) {
      const int8x16_t p = vld1q_s8(patch + k);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) s[j] = vdotq_s32(s[j], p, vld1q_s8(w + (o + j) * K16 + k));
    }
    // Lanes and the correction wrap mod 2^32 (unsigned adds); the true y fits int32.
    const int32x4_t t01 = vpaddq_s32(s[0], s[1]), t23 = vpaddq_s32(s[2], s[3]);
    const uint32x4_t y = vsubq_u32(vreinterpretq_u32_s32(vpaddq_s32(t01, t23)),
                                   vreinterpretq_u32_s32(vld1q_s32(corr + o)));
    vst1q_s32(acc + o, vreinterpretq_s32_u32(y));
  }
  for (; o < cout; ++o) {
    int32x4_t s = vdupq_n_s32(0);
    for (int64_t k = 0; k < K16; k += 16) s = vdotq_s32(s, vld1q_s8(patch + k), vld1q_s8(w + o * K16 + k));
    acc[o] = static_cast<int32_t>(static_cast<uint32_t>(vaddvq_s32(s)) - static_cast<uint32_t>(corr[o]));
  }
}
#endif

}  // namespace onebit::kernels
