// CBNN first layer on bit planes (Li and Ren, arXiv 1802.00904; docs/format.md "bitplanes",
// "bconv2d_planes"): the uint8 image becomes packed +-1 bit planes, and a binary convolution with
// multi-bit weights reads them. Raw pointers only; the dispatchers validate and pick the kernels.
//
// bitplanes: plane i of a pixel is plane id p = planes[i] = c*8 + b (b = 0 the LSB): +1 (bit 0)
// where bit b of u[c] is 1, -1 (bit 1) where it is 0; packed along the planes (docs/format.md §2,
// padding bits 0).
//
// bconv2d_planes: weights are M planes of +-1 weights, plane j worth 2^j, i.e. odd integer
// weights v = sum_j 2^j s_j in [-(2^M-1), 2^M-1]. With y_j the binary dot product of plane j
// (true-zero padding, bconv.h):
//   y = sum_j 2^j * y_j,   |y_j| <= T*Cin  =>  |y| <= (2^M - 1) * KH*KW*Cin   (int32 for M <= 8
// and K <= 2^23). The engine packs each output pixel's whole window, KH*KW*Cin bits, into
// ceil(KH*KW*Cin/64) words (a 3x3 window of 24 planes: 216 bits in 4 words, not 9 words of 24
// bits), with the in-bounds mask, and takes the dot products with the weights in the same window
// layout (kernels/bplanes_kernels.h):
//   y = (2^M - 1) * N - 2 * sum_j 2^j * popcount((x XOR w_j) AND m),   N = in-bounds bits.
// Weights come in either stored layout (docs/format.md, `weight_layout`): "taps" (M, Cout, KH, KW,
// ceil(Cin/64)) or "window" (M, Cout, ceil(KH*KW*Cin/64)), bit t*Cin + c = tap t = i*KW + j,
// channel c; padding bits 0 in both.
#pragma once
#include <cstdint>
#include <memory>

#include "onebit/bconv.h"
#include "onebit/isa.h"
#include "onebit/output.h"

namespace onebit {

// u: `pixels` rows of `channels` uint8; out: `pixels` rows of ceil(nplanes/64) words.
// std::invalid_argument for a plane id outside [0, 8*channels) or nplanes < 1.
void bitplanes(const uint8_t* u, int64_t pixels, int64_t channels, const int32_t* planes, int64_t nplanes,
               uint64_t* out, Isa isa, int threads);

// Weights of a bconv2d_planes re-laid out for the window kernels: blocks of 8 output channels,
// [block][plane][window word][8] (channels past Cout zero). Immutable, shareable across threads.
struct PlanesWeights {
  int bits = 1;
  int64_t cout = 0, kh = 0, kw = 0, cin = 0;
  int64_t ww = 0;      // window words, ceil(KH*KW*Cin/64)
  int64_t blocks = 0;  // ceil(Cout/8)
  std::shared_ptr<uint64_t> words;
};

// Stored weights in the "taps" layout (window = false) or the "window" layout (window = true),
// padding bits 0 (std::invalid_argument otherwise, or for M outside [1, 8]).
std::shared_ptr<const PlanesWeights> prepare_planes_weights(const uint64_t* w, bool window, int weight_bits,
                                                            int64_t cout, int64_t kh, int64_t kw, int64_t cin);

// a.x the packed input (N, H, W, ceil(Cin/64)), a.s its geometry (pad_value 0), a.stage any §5
// stage (int32 = y itself), a.out the output; a.w and a.prepared are not read.
void bconv2d_planes(const BConvArgs& a, const PlanesWeights& w, Isa isa, int threads);

namespace kernels {
// Pixels [p0, p1) of one image.
void bitplanes_scalar(const uint8_t* u, int64_t p0, int64_t p1, int64_t channels, const int32_t* planes,
                      int64_t nplanes, uint64_t* out);
}  // namespace kernels

}  // namespace onebit
