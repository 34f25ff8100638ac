// AVX-512 float32 depthwise convolution: 16 channels per step (masked tails), the scalar kernel's
// operations lane by lane (taps in row-major order, product then sum, no FMA, then the bias).
#include <immintrin.h>

#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/kernels/dwconv8_rows.h"

namespace onebit::kernels {

void dwconv_f32_avx512(const DwConvF32Args& a, int threads) {
  const int64_t c = a.g.cin, ow = a.g.ow;
  dw_rows(a, 0, threads,
          [&](const float* const* xs, const int64_t* taps, int nt, int32_t*, int64_t r, int64_t ox) {
            float* y = a.y + (r * ow + ox) * c;
            for (int64_t cb = 0; cb < c; cb += 16) {
              const __mmask16 m = c - cb >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (c - cb)) - 1);
              __m512 acc = _mm512_setzero_ps();
              for (int t = 0; t < nt; ++t) {
                const __m512 x = _mm512_maskz_loadu_ps(m, xs[t] + cb);
                const __m512 w = _mm512_maskz_loadu_ps(m, a.w + taps[t] * c + cb);
                acc = _mm512_add_ps(acc, _mm512_mul_ps(x, w));
              }
              _mm512_mask_storeu_ps(y + cb, m, _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, a.bias + cb)));
            }
          },
          [](const int32_t*, int64_t) {});
}

}  // namespace onebit::kernels
