// AVX2 window dot products of the bit-plane first layer (bplanes_kernels.h): 8 output channels
// per block as two ymm of 4 words; (x XOR w) AND m counted per byte with the nibble table
// (vpshufb), byte counts summed over up to 31 words (<= 248 per byte), then vpsadbw to 64-bit
// lanes, shifted by the plane's j and added. Equal to planes_dot_scalar bit for bit.
#include <immintrin.h>

#include "onebit/kernels/bplanes_kernels.h"

namespace onebit::kernels {

namespace {
inline __m256i popcnt_bytes(__m256i v, __m256i lut, __m256i low) {
  const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}
}  // namespace

void planes_dot_avx2(const uint64_t* xw, const uint64_t* mw, const int32_t* nv, int64_t npix, int64_t ww,
                     const uint64_t* w, int64_t blocks, int bits, int32_t* y) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                       2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  const int64_t top = (int64_t{1} << bits) - 1;
  for (int64_t p = 0; p < npix; ++p) {
    const uint64_t* x = xw + p * ww;
    const uint64_t* m = mw + p * ww;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint64_t* wb = w + b * bits * ww * 8;
      __m256i acc0 = zero, acc1 = zero;
      for (int j = 0; j < bits; ++j) {
        const uint64_t* wj = wb + j * ww * 8;
        __m256i s0 = zero, s1 = zero;
        for (int64_t i0 = 0; i0 < ww; i0 += 31) {
          const int64_t i1 = i0 + 31 < ww ? i0 + 31 : ww;
          __m256i c0 = zero, c1 = zero;
          for (int64_t i = i0; i < i1; ++i) {
            const __m256i xv = _mm256_set1_epi64x(static_cast<long long>(x[i]));
            const __m256i mv = _mm256_set1_epi64x(static_cast<long long>(m[i]));
            const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wj + i * 8));
            const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wj + i * 8 + 4));
            c0 = _mm256_add_epi8(c0, popcnt_bytes(_mm256_and_si256(_mm256_xor_si256(xv, w0), mv), lut, low));
            c1 = _mm256_add_epi8(c1, popcnt_bytes(_mm256_and_si256(_mm256_xor_si256(xv, w1), mv), lut, low));
          }
          s0 = _mm256_add_epi64(s0, _mm256_sad_epu8(c0, zero));
          s1 = _mm256_add_epi64(s1, _mm256_sad_epu8(c1, zero));
        }
        const __m128i sh = _mm_cvtsi32_si128(j);
        acc0 = _mm256_add_epi64(acc0, _mm256_sll_epi64(s0, sh));
        acc1 = _mm256_add_epi64(acc1, _mm256_sll_epi64(s1, sh));
      }
      alignas(32) int64_t a[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(a), acc0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(a + 4), acc1);
      int32_t* yo = y + p * blocks * 8 + b * 8;
      for (int l = 0; l < 8; ++l) yo[l] = static_cast<int32_t>(top * nv[p] - 2 * a[l]);
    }
  }
}

}  // namespace onebit::kernels
