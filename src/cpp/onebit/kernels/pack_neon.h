// NEON packing of 64 sign masks (0xFF / 0x00 per channel) into one word, shared by the NEON
// bitpack and the NEON bits output stage. Internal linkage: only NEON translation units include it.
#pragma once
#include <arm_neon.h>

#include <cstdint>

namespace onebit::kernels {
namespace {

const uint8_t kBitWeights[8] = {1, 2, 4, 8, 16, 32, 64, 128};

// m[i] holds the masks of channels 8i..8i+7; returns the packed word of the 64 channels: the
// masks ANDed with the bit weights 1, 2, ..., 128, summed by three rounds of pairwise byte adds.
inline uint64_t pack_masks(const uint8x8_t m[8]) {
  const uint8x8_t bw = vld1_u8(kBitWeights);
  uint8x8_t h[8];
  for (int i = 0; i < 8; ++i) h[i] = vand_u8(m[i], bw);
  const uint8x8_t s01 = vpadd_u8(h[0], h[1]), s23 = vpadd_u8(h[2], h[3]);
  const uint8x8_t s45 = vpadd_u8(h[4], h[5]), s67 = vpadd_u8(h[6], h[7]);
  const uint8x8_t t = vpadd_u8(vpadd_u8(s01, s23), vpadd_u8(s45, s67));
  return vget_lane_u64(vreinterpret_u64_u8(t), 0);  // byte i = channels 8i..8i+7
}

}  // namespace
}  // namespace onebit::kernels
