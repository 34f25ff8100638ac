// AVX2 float32 depthwise convolution: 8 channels per step, the taps in row-major order, product
// then sum (two roundings, no FMA: the build uses -ffp-contract=off and the intrinsics are
// separate), then the bias: the scalar kernel's operations lane by lane. Channel tails are masked.
#include <immintrin.h>

#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/kernels/dwconv8_rows.h"

namespace onebit::kernels {

void dwconv_f32_avx2(const DwConvF32Args& a, int threads) {
  const int64_t c = a.g.cin, ow = a.g.ow;
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  dw_rows(a, 0, threads,
          [&](const float* const* xs, const int64_t* taps, int nt, int32_t*, int64_t r, int64_t ox) {
            float* y = a.y + (r * ow + ox) * c;
            for (int64_t cb = 0; cb < c; cb += 8) {
              const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(c - cb < 8 ? c - cb : 8)), idx);
              __m256 acc = _mm256_setzero_ps();
              for (int t = 0; t < nt; ++t) {
                const __m256 x = _mm256_maskload_ps(xs[t] + cb, m);
                const __m256 w = _mm256_maskload_ps(a.w + taps[t] * c + cb, m);
                acc = _mm256_add_ps(acc, _mm256_mul_ps(x, w));
              }
              _mm256_maskstore_ps(y + cb, m, _mm256_add_ps(acc, _mm256_maskload_ps(a.bias + cb, m)));
            }
          },
          [](const int32_t*, int64_t) {});
}

}  // namespace onebit::kernels
