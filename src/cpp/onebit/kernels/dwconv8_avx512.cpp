// AVX-512 int8 depthwise convolution: 32 channels per step (AVX512BW: int8 -> int16, vpmullw,
// exact since |x * w| <= 2^14; widened to int32 and added). The channel tail is a masked load
// (zeros past c); weights are zero padded to 32 channels.
#include <immintrin.h>

#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/kernels/dwconv8_rows.h"
#include "onebit/kernels/output_avx2.h"

namespace onebit::kernels {

void dwconv8_avx512(const DwConv8Args& a, int threads) {
  const int64_t c = a.g.cin, ld = round_up(c, 32);
  Scratch<int16_t> wbuf;
  const int16_t* w16 = dw_weights(a, ld, wbuf);
  const StagePrep sp = prepare_stage(a.stage, c, dwconv8_bound(a.g.kh, a.g.kw));
  dw_rows(a, ld, threads,
          [&](const int8_t* const* xs, const int64_t* taps, int nt, int32_t* d, int64_t, int64_t) {
            for (int64_t cb = 0; cb < c; cb += 32) {
              const __mmask32 m = c - cb >= 32 ? ~__mmask32{0} : (__mmask32{1} << (c - cb)) - 1;
              __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
              for (int t = 0; t < nt; ++t) {
                const __m512i xv = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, xs[t] + cb));
                const __m512i p = _mm512_mullo_epi16(xv, _mm512_loadu_si512(w16 + taps[t] * ld + cb));
                acc0 = _mm512_add_epi32(acc0, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(p)));
                acc1 = _mm512_add_epi32(acc1, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(p, 1)));
              }
              _mm512_storeu_si512(d + cb, acc0);
              _mm512_storeu_si512(d + cb + 16, acc1);
            }
          },
          [&](const int32_t* dots, int64_t r) {
            write_stage_avx2(a.stage, sp, dots, ld, a.g.ow, r * a.g.ow, 0, c, c, a.y);
          });
}

}  // namespace onebit::kernels
