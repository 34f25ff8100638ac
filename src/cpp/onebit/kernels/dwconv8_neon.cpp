// NEON int8 depthwise convolution: 16 channels per step, vmull_s8 (exact int16 products) then
// vaddw_s16 into four int32x4 sums. Channel tails read a zero-padded copy of the last partial
// block (weights are zero padded to 16 channels).
#include <arm_neon.h>

#include <cstring>

#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/kernels/dwconv8_rows.h"
#include "onebit/kernels/output_neon.h"

namespace onebit::kernels {

void dwconv8_neon(const DwConv8Args& a, int threads) {
  const int64_t c = a.g.cin, ld = (c + 15) / 16 * 16, full = c / 16 * 16;
  Scratch<int8_t> wbuf;
  const int8_t* w8 = dw_weights(a, ld, wbuf);
  auto block = [&](const int8_t* const* xs, const int64_t* taps, int nt, int64_t cb, int32_t* d, bool tail) {
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
    for (int t = 0; t < nt; ++t) {
      int8x16_t xv;
      if (tail) {
        int8_t tmp[16] = {};
        std::memcpy(tmp, xs[t] + cb, static_cast<size_t>(c - cb));
        xv = vld1q_s8(tmp);
      } else {
        xv = vld1q_s8(xs[t] + cb);
      }
      const int8x16_t wv = vld1q_s8(w8 + taps[t] * ld + cb);
      const int16x8_t lo = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
      const int16x8_t hi = vmull_s8(vget_high_s8(xv), vget_high_s8(wv));
      s0 = vaddw_s16(s0, vget_low_s16(lo));
      s1 = vaddw_s16(s1, vget_high_s16(lo));
      s2 = vaddw_s16(s2, vget_low_s16(hi));
      s3 = vaddw_s16(s3, vget_high_s16(hi));
    }
    vst1q_s32(d + cb, s0);
    vst1q_s32(d + cb + 4, s1);
    vst1q_s32(d + cb + 8, s2);
    vst1q_s32(d + cb + 12, s3);
  };
  dw_rows(a, ld, threads,
          [&](const int8_t* const* xs, const int64_t* taps, int nt, int32_t* d, int64_t, int64_t) {
            for (int64_t cb = 0; cb < full; cb += 16) block(xs, taps, nt, cb, d, false);
            if (full < c) block(xs, taps, nt, full, d, true);
          },
          [&](const int32_t* dots, int64_t r) {
            write_stage_neon(a.stage, dots, ld, a.g.ow, r * a.g.ow, 0, c, c, a.y);
          });
}

}  // namespace onebit::kernels
