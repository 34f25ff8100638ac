// NEON residual add (aarch64 and 32-bit ARM with NEON; one source for int8). int8: 8 elements
// per step in exact int64 lanes: vmull_s32 / vmlal_s32 form a*ma + b*mb, the rounding term is
// added and vshlq_s64 by -shift is the arithmetic shift (floor division by 2^shift); vqmovn_s64
// saturates to int32 (keeping any value beyond +-127 beyond it) before the clamp to [-127, 127].
// Equal to add_int8_one bit for bit. float32 (aarch64 only): vaddq_f32 is the IEEE add of the
// scalar loop; 32-bit ARM's NEON flushes denormals, so there the float add runs scalar.
#include <arm_neon.h>

#include "onebit/kernels/add_kernels.h"

namespace onebit::kernels {

namespace {
inline int32x2_t fix2(int32x2_t a, int32x2_t b, int32x2_t ma, int32x2_t mb, int64x2_t rnd, int64x2_t sh) {
  int64x2_t t = vmlal_s32(vmull_s32(a, ma), b, mb);
  return vqmovn_s64(vshlq_s64(vaddq_s64(t, rnd), sh));
}
}  // namespace

void add_int8_neon(const int8_t* a, const int8_t* b, int8_t* y, int32_t ma, int32_t mb, int shift, int64_t i0,
                   int64_t i1) {
  const int32x2_t vma = vdup_n_s32(ma), vmb = vdup_n_s32(mb);
  const int64x2_t rnd = vdupq_n_s64(int64_t{1} << (shift - 1)), sh = vdupq_n_s64(-shift);
  const int32x4_t hi = vdupq_n_s32(127), lo = vdupq_n_s32(-127);
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const int16x8_t a16 = vmovl_s8(vld1_s8(a + i)), b16 = vmovl_s8(vld1_s8(b + i));
    const int32x4_t a0 = vmovl_s16(vget_low_s16(a16)), a1 = vmovl_s16(vget_high_s16(a16));
    const int32x4_t b0 = vmovl_s16(vget_low_s16(b16)), b1 = vmovl_s16(vget_high_s16(b16));
    int32x4_t r0 = vcombine_s32(fix2(vget_low_s32(a0), vget_low_s32(b0), vma, vmb, rnd, sh),
                                fix2(vget_high_s32(a0), vget_high_s32(b0), vma, vmb, rnd, sh));
    int32x4_t r1 = vcombine_s32(fix2(vget_low_s32(a1), vget_low_s32(b1), vma, vmb, rnd, sh),
                                fix2(vget_high_s32(a1), vget_high_s32(b1), vma, vmb, rnd, sh));
    r0 = vmaxq_s32(vminq_s32(r0, hi), lo);
    r1 = vmaxq_s32(vminq_s32(r1, hi), lo);
    vst1_s8(y + i, vmovn_s16(vcombine_s16(vmovn_s32(r0), vmovn_s32(r1))));
  }
  for (; i < i1; ++i) y[i] = add_int8_one(a[i], b[i], ma, mb, shift);
}

#if defined(__aarch64__)
void add_f32_neon(const float* a, const float* b, float* y, int64_t i0, int64_t i1) {
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
  for (; i < i1; ++i) y[i] = a[i] + b[i];
}
#endif

}  // namespace onebit::kernels
