// Per-ISA kernels of the bit-plane first layer (onebit/bplanes.h): the window dot products.
//
// For `npix` output pixels, xw and mw (npix, ww) hold each pixel's packed window (bit t*Cin + c
// = channel c of kernel tap t = i*KW + j; bits of out-of-bounds taps 0) and its in-bounds mask
// (1 where the tap is in bounds, up to bit KH*KW*Cin), nv[p] the number of in-bounds bits.
// Weights w: `blocks` blocks of 8 output channels, [block][plane j < bits][word i < ww][lane 8]
// (channels past Cout hold zeros). Output y (npix, 8*blocks) int32:
//   y[p, o] = (2^bits - 1) * nv[p] - 2 * sum_j 2^j * sum_i popcount((xw[p,i] ^ w[o/8][j][i][o%8]) & mw[p,i])
// = sum_j 2^j * y_j with y_j the true-zero-padded binary dot product of weight plane j.
#pragma once
#include <cstdint>

namespace onebit::kernels {

#define ONEBIT_PLANES_DOT_DECLARE(isa)                                                                       \
  void planes_dot_##isa(const uint64_t* xw, const uint64_t* mw, const int32_t* nv, int64_t npix, int64_t ww, \
                        const uint64_t* w, int64_t blocks, int bits, int32_t* y);

ONEBIT_PLANES_DOT_DECLARE(scalar)
#if defined(ONEBIT_HAVE_X86)
ONEBIT_PLANES_DOT_DECLARE(avx2)
ONEBIT_PLANES_DOT_DECLARE(avx512)
#endif
#if defined(ONEBIT_HAVE_NEON)
ONEBIT_PLANES_DOT_DECLARE(neon)
#endif

}  // namespace onebit::kernels
