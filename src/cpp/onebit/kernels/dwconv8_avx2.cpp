// AVX2 int8 depthwise convolution: 16 channels per step. x and w widened to int16, vpmullw (exact:
// |x * w| <= 128 * 128 = 2^14 fits int16), the products widened to int32 and added. Channel tails
// read a zero-padded copy of the last partial block (weights are zero padded to 16 channels).
#include <immintrin.h>

#include <cstring>

#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/kernels/dwconv8_rows.h"
#include "onebit/kernels/output_avx2.h"

namespace onebit::kernels {

void dwconv8_avx2(const DwConv8Args& a, int threads) {
  const int64_t c = a.g.cin, ld = round_up(c, 16), full = c / 16 * 16;
  Scratch<int16_t> wbuf;
  const int16_t* w16 = dw_weights(a, ld, wbuf);
  const StagePrep sp = prepare_stage(a.stage, c, dwconv8_bound(a.g.kh, a.g.kw));
  auto block = [&](const int8_t* const* xs, const int64_t* taps, int nt, int64_t cb, int32_t* d, bool tail) {
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (int t = 0; t < nt; ++t) {
      __m128i xb;
      if (tail) {
        alignas(16) int8_t tmp[16] = {};
        std::memcpy(tmp, xs[t] + cb, static_cast<size_t>(c - cb));
        xb = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
      } else {
        xb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xs[t] + cb));
      }
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w16 + taps[t] * ld + cb));
      const __m256i p = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(xb), wv);
      acc0 = _mm256_add_epi32(acc0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p)));
      acc1 = _mm256_add_epi32(acc1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p, 1)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + cb), acc0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + cb + 8), acc1);
  };
  dw_rows(a, ld, threads,
          [&](const int8_t* const* xs, const int64_t* taps, int nt, int32_t* d, int64_t, int64_t) {
            for (int64_t cb = 0; cb < full; cb += 16) block(xs, taps, nt, cb, d, false);
            if (full < c) block(xs, taps, nt, full, d, true);
          },
          [&](const int32_t* dots, int64_t r) {
            write_stage_avx2(a.stage, sp, dots, ld, a.g.ow, r * a.g.ow, 0, c, c, a.y);
          });
}

}  // namespace onebit::kernels
