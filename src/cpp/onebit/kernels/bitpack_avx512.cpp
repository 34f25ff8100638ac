// AVX-512 bitpack: float32 -> 16 sign bits per compare mask; int8 -> 64 sign bits per
// movepi8_mask (one packed word per instruction); the channels past the last whole word through
// masked loads (the lanes past c load 0, which packs as bit 0: the padding bits). Selected only on
// CPUs that have AVX-512; the tests compare it with the scalar reference there.
#include <immintrin.h>

#include "onebit/bitpack.h"

namespace onebit::kernels {

void bitpack_f32_avx512(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  const int64_t words = (c + 63) / 64, full = c / 64;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * c;
    uint64_t* op = out + p * words;
    for (int64_t wi = 0; wi < full; ++wi) {
      uint64_t word = 0;
      for (int g = 0; g < 4; ++g)
        word |= static_cast<uint64_t>(_mm512_cmp_ps_mask(_mm512_loadu_ps(xp + wi * 64 + g * 16), zero, _CMP_LT_OQ))
                << (g * 16);
      op[wi] = word;
    }
    if (full < words) {
      const int64_t rem = c - full * 64;
      uint64_t word = 0;
      for (int g = 0; g < 4 && rem > g * 16; ++g) {
        const int64_t n = rem - g * 16 < 16 ? rem - g * 16 : 16;
        const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
        word |= static_cast<uint64_t>(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, xp + full * 64 + g * 16), zero,
                                                         _CMP_LT_OQ))
                << (g * 16);
      }
      op[full] = word;
    }
  }
}

void bitpack_i8_avx512(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  const int64_t words = (c + 63) / 64, full = c / 64;
  for (int64_t p = p0; p < p1; ++p) {
    const int8_t* xp = x + p * c;
    uint64_t* op = out + p * words;
    for (int64_t wi = 0; wi < full; ++wi)
      op[wi] = static_cast<uint64_t>(_mm512_movepi8_mask(_mm512_loadu_si512(xp + wi * 64)));
    if (full < words) {
      const __mmask64 m = (__mmask64{1} << (c - full * 64)) - 1;  // 1..63 channels
      op[full] = static_cast<uint64_t>(_mm512_movepi8_mask(_mm512_maskz_loadu_epi8(m, xp + full * 64)));
    }
  }
}

}  // namespace onebit::kernels
