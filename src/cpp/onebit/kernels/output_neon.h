// Fused output stages, NEON form (aarch64 and 32-bit ARM with NEON): write_stage_neon has the
// arguments of write_stage_scalar (kernels/output_stage.h, the spec) and equals it bit for bit.
// Internal linkage, like output_stage.h: only NEON translation units include it.
#pragma once
#include <arm_neon.h>

#include <cstring>

#include "onebit/kernels/output_stage.h"
#include "onebit/kernels/pack_neon.h"

namespace onebit::kernels {
namespace {

// Output stage, NEON form of write_stage_scalar (kernels/output_stage.h, the spec), same
// arguments. int8: y*M in exact int64 lanes (vmull_s32), + B + 2^(S-1), vshlq_s64 by -S (the
// arithmetic shift), vqmovn_s64 then the clamp to [-127, 127]. bits: (y < t) or (y > t) picked
// per channel by the direction's sign, 64 compare masks packed into a word by pairwise byte adds
// of the bit weights. float (aarch64): vcvtq_f32_s32 then separate multiply and add. Partial
// words of bits and channel tails run the scalar writer.

// 4 channels' bit masks (all ones = bit 1) from y, thresholds and directions.
inline uint32x4_t bit_masks(int32x4_t y, const int32_t* t, int32x4_t d) {
  const int32x4_t tv = vld1q_s32(t);
  return vbslq_u32(vcgtq_s32(d, vdupq_n_s32(0)), vcltq_s32(y, tv), vcgtq_s32(y, tv));
}

inline int32x2_t int8_pair(int32x2_t y, int32x2_t m, int64x2_t b, int64x2_t sh) {
  return vqmovn_s64(vshlq_s64(vaddq_s64(vmull_s32(y, m), b), sh));
}

void write_stage_neon(const OutputStage& st, const int32_t* dots, int64_t ld, int64_t npix, int64_t pix0,
                      int64_t c0, int64_t c1, int64_t cout, void* out) {
  switch (st.kind) {
    case OutputKind::int32:
      for (int64_t p = 0; p < npix; ++p)
        std::memcpy(static_cast<int32_t*>(out) + (pix0 + p) * cout + c0, dots + p * ld, (c1 - c0) * sizeof(int32_t));
      return;
    case OutputKind::bits: {
      const int64_t words = (cout + 63) / 64;
      for (int64_t p = 0; p < npix; ++p) {
        const int32_t* y = dots + p * ld - c0;
        uint64_t* o = static_cast<uint64_t*>(out) + (pix0 + p) * words;
        for (int64_t wi = c0 / 64; wi * 64 < c1; ++wi) {
          const int64_t b = wi * 64;
          if (b + 64 > c1) {  // partial last word
            write_stage_scalar(st, dots + p * ld + (b - c0), ld, 1, pix0 + p, b, c1, cout, out);
            continue;
          }
          uint8x8_t m[8];
          for (int g = 0; g < 8; ++g) {
            const int64_t c = b + 8 * g;
            const int16x8_t d16 = vmovl_s8(vld1_s8(st.direction + c));
            const uint32x4_t lo = bit_masks(vld1q_s32(y + c), st.threshold + c, vmovl_s16(vget_low_s16(d16)));
            const uint32x4_t hi = bit_masks(vld1q_s32(y + c + 4), st.threshold + c + 4, vmovl_s16(vget_high_s16(d16)));
            m[g] = vmovn_u16(vcombine_u16(vmovn_u32(lo), vmovn_u32(hi)));
          }
          o[wi] = pack_masks(m);
        }
      }
      return;
    }
    case OutputKind::int8: {
      const int64x2_t sh = vdupq_n_s64(-st.shift);
      const int64_t rnd = int64_t{1} << (st.shift - 1);
      const int32x4_t hi = vdupq_n_s32(127), lo = vdupq_n_s32(-127);
      for (int64_t p = 0; p < npix; ++p) {
        const int32_t* y = dots + p * ld - c0;
        int8_t* o = static_cast<int8_t*>(out) + (pix0 + p) * cout;
        int64_t c = c0;
        for (; c + 8 <= c1; c += 8) {
          int32x4_t q[2];
          for (int h = 0; h < 2; ++h) {
            const int64_t ch = c + 4 * h;
            const int32x4_t yv = vld1q_s32(y + ch), mv = vld1q_s32(st.multiplier + ch);
            const int64x2_t b0 = vaddq_s64(vmovl_s32(vld1_s32(st.bias + ch)), vdupq_n_s64(rnd));
            const int64x2_t b1 = vaddq_s64(vmovl_s32(vld1_s32(st.bias + ch + 2)), vdupq_n_s64(rnd));
            q[h] = vcombine_s32(int8_pair(vget_low_s32(yv), vget_low_s32(mv), b0, sh),
                                int8_pair(vget_high_s32(yv), vget_high_s32(mv), b1, sh));
            q[h] = vmaxq_s32(vminq_s32(q[h], hi), lo);
          }
          vst1_s8(o + c, vmovn_s16(vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]))));
        }
        for (; c < c1; ++c) o[c] = stage_int8(y[c], st.multiplier[c], st.bias[c], st.shift);
      }
      return;
    }
    case OutputKind::f32:
#if defined(__aarch64__)
      for (int64_t p = 0; p < npix; ++p) {
        const int32_t* y = dots + p * ld - c0;
        float* o = static_cast<float*>(out) + (pix0 + p) * cout;
        int64_t c = c0;
        for (; c + 4 <= c1; c += 4)
          vst1q_f32(o + c, vaddq_f32(vmulq_f32(vcvtq_f32_s32(vld1q_s32(y + c)), vld1q_f32(st.scale + c)),
                                     vld1q_f32(st.fbias + c)));
        for (; c < c1; ++c) o[c] = stage_float(y[c], st.scale[c], st.fbias[c]);
      }
#else  // 32-bit NEON flushes denormals: the scalar writer
      write_stage_scalar(st, dots, ld, npix, pix0, c0, c1, cout, out);
#endif
      return;
  }
}

}  // namespace
}  // namespace onebit::kernels
