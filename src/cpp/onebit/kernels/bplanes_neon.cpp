// NEON window dot products of the bit-plane first layer (bplanes_kernels.h; aarch64 and 32-bit
// ARM): 8 output channels per block as four q registers of 2 words; (x XOR w) AND m counted per
// byte (vcntq_u8), byte counts summed over up to 31 words (<= 248 per byte), widened pairwise to
// 64-bit lanes, shifted by the plane's j and added. Equal to planes_dot_scalar bit for bit.
#include <arm_neon.h>

#include "onebit/kernels/bplanes_kernels.h"

namespace onebit::kernels {

void planes_dot_neon(const uint64_t* xw, const uint64_t* mw, const int32_t* nv, int64_t npix, int64_t ww,
                     const uint64_t* w, int64_t blocks, int bits, int32_t* y) {
  const int64_t top = (int64_t{1} << bits) - 1;
  for (int64_t p = 0; p < npix; ++p) {
    const uint64_t* x = xw + p * ww;
    const uint64_t* m = mw + p * ww;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint64_t* wb = w + b * bits * ww * 8;
      uint64x2_t acc[4] = {vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0)};
      for (int j = 0; j < bits; ++j) {
        const uint64_t* wj = wb + j * ww * 8;
        const int64x2_t sh = vdupq_n_s64(j);
        for (int64_t i0 = 0; i0 < ww; i0 += 31) {
          const int64_t i1 = i0 + 31 < ww ? i0 + 31 : ww;
          uint8x16_t c[4] = {vdupq_n_u8(0), vdupq_n_u8(0), vdupq_n_u8(0), vdupq_n_u8(0)};
          for (int64_t i = i0; i < i1; ++i) {
            const uint64x2_t xv = vdupq_n_u64(x[i]), mv = vdupq_n_u64(m[i]);
            for (int q = 0; q < 4; ++q) {
              const uint64x2_t d = vandq_u64(veorq_u64(xv, vld1q_u64(wj + i * 8 + 2 * q)), mv);
              c[q] = vaddq_u8(c[q], vcntq_u8(vreinterpretq_u8_u64(d)));
            }
          }
          for (int q = 0; q < 4; ++q) {
            const uint64x2_t s = vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(c[q])));
            acc[q] = vaddq_u64(acc[q], vshlq_u64(s, sh));
          }
        }
      }
      int32_t* yo = y + p * blocks * 8 + b * 8;
      for (int q = 0; q < 4; ++q) {
        yo[2 * q] = static_cast<int32_t>(top * nv[p] - 2 * static_cast<int64_t>(vgetq_lane_u64(acc[q], 0)));
        yo[2 * q + 1] = static_cast<int32_t>(top * nv[p] - 2 * static_cast<int64_t>(vgetq_lane_u64(acc[q], 1)));
      }
    }
  }
}

}  // namespace onebit::kernels
