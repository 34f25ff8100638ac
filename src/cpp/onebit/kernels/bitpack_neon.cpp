// NEON bitpack (aarch64 and 32-bit ARM with NEON; one source). Sign masks (0xFF / 0x00 per
// channel) are ANDed with the bit weights 1, 2, ..., 128 and summed by three rounds of pairwise
// byte adds (vpadd_u8), which turns 64 masks into the 8 bytes of one packed word.
// float32: x < 0 (ordered: NaN packs as +1, -0.0 as +1) is tested on the bit pattern u as
// 0x80000000 < u <= 0xFF800000 (negative, not -0.0, not a NaN), integer compares only: 32-bit
// ARM's NEON flushes denormal inputs of float compares to zero, which would pack -1e-40 as +1.
// int8: an arithmetic shift by 7 spreads the sign bit over the byte.
#include <arm_neon.h>

#include "onebit/bitpack.h"
#include "onebit/kernels/pack_neon.h"

namespace onebit::kernels {

namespace {

template <typename T>
inline uint64_t tail_word(const T* xp, int64_t from, int64_t c) {
  uint64_t word = 0;
  for (int64_t ch = from; ch < c; ++ch) word |= static_cast<uint64_t>(xp[ch] < 0) << (ch - from);
  return word;
}

// Packs pixels [p0, p1) of c channels: full words from mask(q, i), the sign masks of channels
// 8i..8i+7 of the 64 at q; a partial last word by the scalar rule.
template <typename T, class Mask>
inline void pack_pixels(const T* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out, Mask mask) {
  const int64_t words = (c + 63) / 64, full = c / 64;
  for (int64_t p = p0; p < p1; ++p) {
    const T* xp = x + p * c;
    uint64_t* op = out + p * words;
    for (int64_t wi = 0; wi < full; ++wi) {
      uint8x8_t m[8];
      for (int i = 0; i < 8; ++i) m[i] = mask(xp + wi * 64, i);
      op[wi] = pack_masks(m);
    }
    if (full < words) op[full] = tail_word(xp, full * 64, c);
  }
}

}  // namespace

void bitpack_f32_neon(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  const uint32x4_t neg_zero = vdupq_n_u32(0x80000000u), neg_inf = vdupq_n_u32(0xFF800000u);
  auto lt0 = [&](const float* q) {
    const uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(q));
    return vandq_u32(vcgtq_u32(u, neg_zero), vcleq_u32(u, neg_inf));
  };
  pack_pixels(x, p0, p1, c, out, [&](const float* q, int i) {
    const uint32x4_t a = lt0(q + 8 * i), b = lt0(q + 8 * i + 4);
    return vmovn_u16(vcombine_u16(vmovn_u32(a), vmovn_u32(b)));
  });
}

void bitpack_i8_neon(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  pack_pixels(x, p0, p1, c, out,
              [](const int8_t* q, int i) { return vreinterpret_u8_s8(vshr_n_s8(vld1_s8(q + 8 * i), 7)); });
}

}  // namespace onebit::kernels
