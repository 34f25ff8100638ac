// AVX-512 window dot products of the bit-plane first layer (bplanes_kernels.h): 8 output
// channels per zmm (one block), vpternlogq forms (x XOR w) AND m, vpopcntq counts, the plane sums
// are shifted by j and added in 64-bit lanes; windows of 1 to 4 words keep the pixel's words in
// registers. Equal to planes_dot_scalar bit for bit.
#include <immintrin.h>

#include "onebit/kernels/bplanes_kernels.h"

namespace onebit::kernels {

namespace {

// Windows of WW words (1..4): the pixel's words broadcast once, kept in registers over the blocks.
template <int WW>
void dot_fixed(const uint64_t* xw, const uint64_t* mw, const int32_t* nv, int64_t npix, const uint64_t* w,
               int64_t blocks, int bits, int32_t* y) {
  const __m512i top = _mm512_set1_epi64((int64_t{1} << bits) - 1);
  for (int64_t p = 0; p < npix; ++p) {
    __m512i xv[WW], mv[WW];
    for (int i = 0; i < WW; ++i) {
      xv[i] = _mm512_set1_epi64(static_cast<long long>(xw[p * WW + i]));
      mv[i] = _mm512_set1_epi64(static_cast<long long>(mw[p * WW + i]));
    }
    const __m512i base = _mm512_mullo_epi64(top, _mm512_set1_epi64(nv[p]));
    for (int64_t b = 0; b < blocks; ++b) {
      const uint64_t* wb = w + b * bits * WW * 8;
      __m512i acc = _mm512_setzero_si512();
      for (int j = 0; j < bits; ++j) {
        __m512i c = _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(xv[0], _mm512_load_si512(wb + j * WW * 8), mv[0], 0x28));
        for (int i = 1; i < WW; ++i)  // imm 0x28 = (A XOR B) AND C
          c = _mm512_add_epi64(c, _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(
                                      xv[i], _mm512_load_si512(wb + (j * WW + i) * 8), mv[i], 0x28)));
        acc = _mm512_add_epi64(acc, _mm512_slli_epi64(c, static_cast<unsigned>(j)));
      }
      const __m512i r = _mm512_sub_epi64(base, _mm512_slli_epi64(acc, 1));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + (p * blocks + b) * 8), _mm512_cvtepi64_epi32(r));
    }
  }
}

}  // namespace

void planes_dot_avx512(const uint64_t* xw, const uint64_t* mw, const int32_t* nv, int64_t npix, int64_t ww,
                       const uint64_t* w, int64_t blocks, int bits, int32_t* y) {
  switch (ww) {
    case 1: return dot_fixed<1>(xw, mw, nv, npix, w, blocks, bits, y);
    case 2: return dot_fixed<2>(xw, mw, nv, npix, w, blocks, bits, y);
    case 3: return dot_fixed<3>(xw, mw, nv, npix, w, blocks, bits, y);
    case 4: return dot_fixed<4>(xw, mw, nv, npix, w, blocks, bits, y);
    default: break;
  }
  const __m512i top = _mm512_set1_epi64((int64_t{1} << bits) - 1);
  for (int64_t p = 0; p < npix; ++p) {
    const uint64_t* x = xw + p * ww;
    const uint64_t* m = mw + p * ww;
    const __m512i base = _mm512_mullo_epi64(top, _mm512_set1_epi64(nv[p]));
    for (int64_t b = 0; b < blocks; ++b) {
      const uint64_t* wb = w + b * bits * ww * 8;
      __m512i acc = _mm512_setzero_si512();
      for (int j = 0; j < bits; ++j) {
        const uint64_t* wj = wb + j * ww * 8;
        __m512i c = _mm512_setzero_si512();
        for (int64_t i = 0; i < ww; ++i) {
          // imm 0x28 = (A XOR B) AND C
          const __m512i d = _mm512_ternarylogic_epi64(_mm512_set1_epi64(static_cast<long long>(x[i])),
                                                      _mm512_load_si512(wj + i * 8),
                                                      _mm512_set1_epi64(static_cast<long long>(m[i])), 0x28);
          c = _mm512_add_epi64(c, _mm512_popcnt_epi64(d));
        }
        acc = _mm512_add_epi64(acc, _mm512_slli_epi64(c, static_cast<unsigned>(j)));
      }
      const __m512i r = _mm512_sub_epi64(base, _mm512_slli_epi64(acc, 1));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + p * blocks * 8 + b * 8), _mm512_cvtepi64_epi32(r));
    }
  }
}

}  // namespace onebit::kernels
