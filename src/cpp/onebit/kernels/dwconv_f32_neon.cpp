// NEON float32 depthwise convolution (aarch64; 32-bit NEON flushes denormals and runs the scalar
// kernel): 4 channels per step, the scalar kernel's operations lane by lane (taps in row-major
// order, vmulq then vaddq: no fused multiply-add, then the bias); channel tails run the scalar
// loop.
#include "onebit/kernels/dwconv8_kernels.h"
#if defined(__aarch64__)
#include <arm_neon.h>

#include "onebit/kernels/dwconv8_rows.h"

namespace onebit::kernels {

void dwconv_f32_neon(const DwConvF32Args& a, int threads) {
  const int64_t c = a.g.cin, ow = a.g.ow, full = c / 4 * 4;
  dw_rows(a, 0, threads,
          [&](const float* const* xs, const int64_t* taps, int nt, int32_t*, int64_t r, int64_t ox) {
            float* y = a.y + (r * ow + ox) * c;
            int64_t cb = 0;
            for (; cb < full; cb += 4) {
              float32x4_t acc = vdupq_n_f32(0.0f);
              for (int t = 0; t < nt; ++t)
                acc = vaddq_f32(acc, vmulq_f32(vld1q_f32(xs[t] + cb), vld1q_f32(a.w + taps[t] * c + cb)));
              vst1q_f32(y + cb, vaddq_f32(acc, vld1q_f32(a.bias + cb)));
            }
            for (; cb < c; ++cb) {
              float acc = 0.0f;
              for (int t = 0; t < nt; ++t) {
                const float prod = xs[t][cb] * a.w[taps[t] * c + cb];
                acc = acc + prod;
              }
              y[cb] = acc + a.bias[cb];
            }
          },
          [](const int32_t*, int64_t) {});
}

}  // namespace onebit::kernels
#endif
