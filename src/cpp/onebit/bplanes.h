// CBNN first layer on bit planes (Li and Ren, arXiv 1802.00904; docs/format.md "bitplanes",
// "bconv2d_planes"): the uint8 image becomes packed +-1 bit planes, and a binary convolution with
// multi-bit weights reads them. Raw pointers only; the dispatchers validate and pick the kernels.
//
// bitplanes: plane i of a pixel is plane id p = planes[i] = c*8 + b (b = 0 the LSB): +1 (bit 0)
// where bit b of u[c] is 1, -1 (bit 1) where it is 0; packed along the planes (docs/format.md §2,
// padding bits 0).
//
// bconv2d_planes: weights are M planes of +-1 weights (M, Cout, KH, KW, W64), plane j worth 2^j,
// i.e. odd integer weights v = sum_j 2^j s_j in [-(2^M-1), 2^M-1]. With y_j the binary dot product
// of plane j (true-zero padding, bconv.h):
//   y = sum_j 2^j * y_j,   |y_j| <= T*Cin  =>  |y| <= (2^M - 1) * KH*KW*Cin   (int32 for M <= 8
// and K <= 2^23). The M planes run as one binary conv with M*Cout output channels (channel
// j*Cout + o: the weight tensor's own layout) into int32 accumulators, per image; a combine
// kernel forms y and writes the §5 output stage.
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

// Weights (M, Cout, KH, KW, W64) prepared for `isa`'s binary conv as M*Cout output channels.
std::shared_ptr<const PreparedWeights> prepare_bconv_planes_weights(const uint64_t* w, int weight_bits, int64_t cout,
                                                                    int64_t kh, int64_t kw, int64_t cin, Isa isa,
                                                                    int threads);

// a.s.cout = Cout (output channels of the layer), a.w the (M, Cout, KH, KW, W64) weights or
// a.prepared from prepare_bconv_planes_weights; a.stage any §5 stage (int32 = y itself).
void bconv2d_planes(const BConvArgs& a, int weight_bits, Isa isa, int threads);

namespace kernels {
// Pixels [p0, p1) of one image.
void bitplanes_scalar(const uint8_t* u, int64_t p0, int64_t p1, int64_t channels, const int32_t* planes,
                      int64_t nplanes, uint64_t* out);
// y[p*cout + o] = sum_j acc[p*(M*cout) + j*cout + o] << j for pixels [0, npix), then the stage
// for flat output pixels pix0 .. pix0+npix-1.
void planes_combine_scalar(const int32_t* acc, int64_t npix, int64_t cout, int bits, const OutputStage& st,
                           int64_t pix0, void* out);
}  // namespace kernels

}  // namespace onebit
