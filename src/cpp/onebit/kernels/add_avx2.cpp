// AVX2 residual add. int8: 32 elements per step. When 128*(|ma| + |mb|) + 2^(shift-1) < 2^15
// (equal scales after the dispatcher removed common powers of two) the fixed-point sum fits
// int16 lanes; when it is < 2^31 it fits 32-bit lanes (vpmulld); otherwise the exact
// int64 path emulates the 64-bit products with vpmuldq on even/odd lanes and the missing
// 64-bit arithmetic shift with a biased logical shift. Both equal add_int8_one bit for bit.
#include <immintrin.h>

#include <cstdlib>

#include "onebit/kernels/add_kernels.h"
#include "onebit/kernels/fix64_avx2.h"

namespace onebit::kernels {

namespace {

inline __m256i pack_4x_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// int32 lanes: (a*ma + b*mb + round) >> shift, clamped; exact under the int32 bound.
inline __m256i fix32(__m256i a, __m256i b, __m256i ma, __m256i mb, __m256i rnd, __m128i sh) {
  __m256i t = _mm256_add_epi32(_mm256_mullo_epi32(a, ma), _mm256_mullo_epi32(b, mb));
  t = _mm256_sra_epi32(_mm256_add_epi32(t, rnd), sh);
  t = _mm256_min_epi32(t, _mm256_set1_epi32(127));
  return _mm256_max_epi32(t, _mm256_set1_epi32(-127));
}

// int64 lanes (the low 32 bits of each 64-bit lane hold the operand): floor(t / 2^shift) with
// t = a*ma + b*mb + round, clamped to [-127, 127]. (t + 2^63) is non-negative as uint64, and
// (t + 2^63) >>> s = floor(t / 2^s) + 2^(63-s) exactly because 2^s divides 2^63.
inline __m256i fix64_half(__m256i a, __m256i b, __m256i ma, __m256i mb, __m256i rnd, __m128i sh,
                          __m256i bias_out) {
  __m256i t = _mm256_add_epi64(_mm256_mul_epi32(a, ma), _mm256_mul_epi32(b, mb));
  return floor_shift_clamp127(_mm256_add_epi64(t, rnd), sh, bias_out);
}

inline __m256i fix64(__m256i a, __m256i b, __m256i ma, __m256i mb, __m256i rnd, __m128i sh,
                     __m256i bias_out) {
  const __m256i even = fix64_half(a, b, ma, mb, rnd, sh, bias_out);
  const __m256i odd = fix64_half(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32), ma, mb, rnd,
                                 sh, bias_out);
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

}  // namespace

void add_int8_avx2(const int8_t* a, const int8_t* b, int8_t* y, int32_t ma, int32_t mb, int shift,
                   int64_t i0, int64_t i1) {
  const int64_t bound = 128 * (std::llabs(ma) + std::llabs(mb)) + (int64_t{1} << (shift - 1));
  const bool narrow = bound <= int64_t{INT32_MAX};
  const __m256i mav = _mm256_set1_epi32(ma), mbv = _mm256_set1_epi32(mb);
  const __m128i sh = _mm_cvtsi32_si128(shift);
  const __m256i rnd32 = _mm256_set1_epi32(static_cast<int32_t>(narrow ? (1u << (shift - 1)) : 0));
  const __m256i rnd64 = _mm256_set1_epi64x(int64_t{1} << (shift - 1));
  const __m256i bias_out = _mm256_set1_epi64x(int64_t{1} << (63 - shift));
  int64_t i = i0;
  if (bound <= 32767) {  // |a*ma + b*mb + 2^(shift-1)| < 2^15: int16 lanes, 16 per vector
    const __m256i ma16 = _mm256_set1_epi16(static_cast<int16_t>(ma));
    const __m256i mb16 = _mm256_set1_epi16(static_cast<int16_t>(mb));
    const __m256i rnd16 = _mm256_set1_epi16(static_cast<int16_t>(1 << (shift - 1)));
    const __m256i hi = _mm256_set1_epi16(127), lo = _mm256_set1_epi16(-127);
    auto half = [&](const int8_t* pa, const int8_t* pb) __attribute__((always_inline)) {
      const __m256i av = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pa)));
      const __m256i bv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb)));
      __m256i t = _mm256_add_epi16(_mm256_mullo_epi16(av, ma16), _mm256_mullo_epi16(bv, mb16));
      t = _mm256_sra_epi16(_mm256_add_epi16(t, rnd16), sh);
      return _mm256_max_epi16(_mm256_min_epi16(t, hi), lo);
    };
    for (; i + 32 <= i1; i += 32) {
      const __m256i q = _mm256_packs_epi16(half(a + i, b + i), half(a + i + 16, b + i + 16));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_permute4x64_epi64(q, 0xD8));
    }
  }
  for (; i + 32 <= i1; i += 32) {
    const __m128i alo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i ahi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 16));
    const __m128i blo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    const __m128i bhi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16));
    __m256i av[4] = {_mm256_cvtepi8_epi32(alo), _mm256_cvtepi8_epi32(_mm_srli_si128(alo, 8)),
                     _mm256_cvtepi8_epi32(ahi), _mm256_cvtepi8_epi32(_mm_srli_si128(ahi, 8))};
    __m256i bv[4] = {_mm256_cvtepi8_epi32(blo), _mm256_cvtepi8_epi32(_mm_srli_si128(blo, 8)),
                     _mm256_cvtepi8_epi32(bhi), _mm256_cvtepi8_epi32(_mm_srli_si128(bhi, 8))};
    __m256i q[4];
    if (narrow) {
      for (int v = 0; v < 4; ++v) q[v] = fix32(av[v], bv[v], mav, mbv, rnd32, sh);
    } else {
      for (int v = 0; v < 4; ++v) q[v] = fix64(av[v], bv[v], mav, mbv, rnd64, sh, bias_out);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), pack_4x_i32_to_i8(q[0], q[1], q[2], q[3]));
  }
  for (; i < i1; ++i) y[i] = add_int8_one(a[i], b[i], ma, mb, shift);
}

void add_f32_avx2(const float* a, const float* b, float* y, int64_t i0, int64_t i1) {
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8)
    _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < i1; ++i) y[i] = a[i] + b[i];
}

}  // namespace onebit::kernels
