// AVX2 bitpack: float32 -> 8 sign bits per compare (x < 0, ordered: NaN packs as +1, -0.0 as
// +1, exactly like the scalar x < 0); int8 -> 32 sign bits per movemask (q < 0 <=> top bit). The
// channels past the last whole word (all of them below 64 channels) take the same path on 64
// values read in place, the bits past c masked off, where the chunk's pixels hold 64 more values;
// near the chunk's end they are copied into a zeroed block first (a zero packs as bit 0).
#include <immintrin.h>

#include <cstring>

#include "onebit/bitpack.h"

namespace onebit::kernels {

namespace {

inline uint64_t word_f32(const float* v) {
  const __m256 zero = _mm256_setzero_ps();
  uint64_t word = 0;
  for (int g = 0; g < 8; ++g)
    word |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + g * 8), zero, _CMP_LT_OQ)))
            << (g * 8);
  return word;
}

inline uint64_t word_i8(const int8_t* v) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + 32));
  return static_cast<uint32_t>(_mm256_movemask_epi8(lo)) |
         (static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(hi))) << 32);
}

}  // namespace

void bitpack_f32_avx2(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  const int64_t words = (c + 63) / 64, full = c / 64;
  for (int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * c;
    uint64_t* op = out + p * words;
    for (int64_t wi = 0; wi < full; ++wi) op[wi] = word_f32(xp + wi * 64);
    if (full < words) {
      const int64_t rem = c - full * 64;
      if ((p1 - p) * c - full * 64 >= 64) {
        op[full] = word_f32(xp + full * 64) & ((uint64_t{1} << rem) - 1);
      } else {
        alignas(32) float t[64] = {};
        std::memcpy(t, xp + full * 64, static_cast<size_t>(rem) * sizeof(float));
        op[full] = word_f32(t);
      }
    }
  }
}

void bitpack_i8_avx2(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  const int64_t words = (c + 63) / 64, full = c / 64;
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t* xp = x + p * c;
    uint64_t* op = out + p * words;
    for (int64_t wi = 0; wi < full; ++wi) op[wi] = word_i8(xp + wi * 64);
    if (full < words) {
      const int64_t rem = c - full * 64;
      if ((p1 - p) * c - full * 64 >= 64) {
        op[full] = word_i8(xp + full * 64) & ((uint64_t{1} << rem) - 1);
      } else {
        alignas(32) int8_t t[64] = {};
        std::memcpy(t, xp + full * 64, static_cast<size_t>(rem));
        op[full] = word_i8(t);
      }
    }
  }
}

}  // namespace onebit::kernels
