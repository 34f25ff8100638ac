// AVX2 bitpack: float32 -> 8 sign bits per compare (x < 0, ordered: NaN packs as +1, -0.0 as
// +1, exactly like the scalar x < 0); int8 -> 32 sign bits per movemask (q < 0 <=> top bit).
#include <immintrin.h>

#include "onebit/bitpack.h"

namespace onebit::kernels {

void bitpack_f32_avx2(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  const int64_t words = (c + 63) / 64, full = c / 64;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * c;
    uint64_t* op = out + p * words;
    for (int64_t wi = 0; wi < full; ++wi) {
      uint64_t word = 0;
      for (int g = 0; g < 8; ++g) {
        const __m256 v = _mm256_loadu_ps(xp + wi * 64 + g * 8);
        word |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ))) << (g * 8);
      }
      op[wi] = word;
    }
    if (full < words) {
      uint64_t word = 0;
      for (int64_t ch = full * 64; ch < c; ++ch) word |= static_cast<uint64_t>(xp[ch] < 0) << (ch - full * 64);
      op[full] = word;
    }
  }
}

void bitpack_i8_avx2(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  const int64_t words = (c + 63) / 64, full = c / 64;
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t* xp = x + p * c;
    uint64_t* op = out + p * words;
    for (int64_t wi = 0; wi < full; ++wi) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + wi * 64));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + wi * 64 + 32));
      op[wi] = static_cast<uint32_t>(_mm256_movemask_epi8(lo)) |
               (static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(hi))) << 32);
    }
    if (full < words) {
      uint64_t word = 0;
      for (int64_t ch = full * 64; ch < c; ++ch) word |= static_cast<uint64_t>(xp[ch] < 0) << (ch - full * 64);
      op[full] = word;
    }
  }
}

}  // namespace onebit::kernels
