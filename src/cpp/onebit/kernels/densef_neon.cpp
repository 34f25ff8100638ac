// NEON float32 dense layer (aarch64 only: 32-bit ARM's NEON flushes denormals to zero, so there
// the table runs the scalar kernel). The eight partial sums of the contract (onebit/densef.h)
// are two float32x4 vectors, lo = acc[0..3] and hi = acc[4..7]; products and sums are separate
// vmulq_f32 / vaddq_f32 (never fused: the build uses -ffp-contract=off). The final
// ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7)) is lo + hi, then
// (v0 + v2) + (v1 + v3): the same operations as the scalar reference.
#include <arm_neon.h>

#include "onebit/kernels/densef_kernels.h"

namespace onebit::kernels {

#if defined(__aarch64__)
void dense_f32_neon(const float* x, const float* w, const float* bias, float* y, int64_t n, int64_t in,
                    int64_t out, int64_t b0, int64_t b1) {
  const int64_t ob = (out + 3) / 4, chunk = dense_f32_chunk_rows(in);
  const int64_t in8 = in / 8 * 8;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t r0 = b / ob * chunk, r1 = r0 + chunk < n ? r0 + chunk : n;
    const int64_t o0 = b % ob * 4, o1 = o0 + 4 < out ? o0 + 4 : out;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * in;
      for (int64_t o = o0; o < o1; ++o) {
        const float* wr = w + o * in;
        float32x4_t lo = vdupq_n_f32(0.0f), hi = vdupq_n_f32(0.0f);
        for (int64_t i = 0; i < in8; i += 8) {
          lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(xr + i), vld1q_f32(wr + i)));
          hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(xr + i + 4), vld1q_f32(wr + i + 4)));
        }
        if (in8 < in) {  // last partial group of 8: products of missing elements are 0
          float px[8] = {}, pw[8] = {};
          for (int64_t i = in8; i < in; ++i) {
            px[i - in8] = xr[i];
            pw[i - in8] = wr[i];
          }
          lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(px), vld1q_f32(pw)));
          hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(px + 4), vld1q_f32(pw + 4)));
        }
        const float32x4_t v = vaddq_f32(lo, hi);
        const float s = (vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 2)) + (vgetq_lane_f32(v, 1) + vgetq_lane_f32(v, 3));
        y[r * out + o] = s + bias[o];
      }
    }
  }
}
#endif

}  // namespace onebit::kernels
