// Pooling kernels of the network: max pooling on packed bits
// and on int8, average pooling on int8 and float32, global average pooling. NHWC layout.
// Raw pointers only; the dispatcher validates geometry (std::invalid_argument) and splits the
// N*OH output rows over the persistent thread pool (each row computed by one thread with the
// same code, so results never depend on the thread count).
#pragma once
#include <cstdint>

#include "onebit/isa.h"

namespace onebit {

// Geometry of a 2-D pooling window over an NHWC tensor. `c` is the number of elements per
// pixel: packed words (W64) for bits, channels for int8 / float32. PyTorch semantics:
// oh = floor((h + 2*ph - kh) / sh) + 1, or with ceil_mode oh = ceil((h + 2*ph - kh) / sh) + 1
// minus one if that last window would start at or after h + ph (it must start inside the input
// or its top/left padding); likewise ow. Padding requires ph <= kh/2 and pw <= kw/2 so every
// window holds at least one in-bounds tap. Padding taps are ignored (max pooling) or count as
// zeros only when count_include_pad (average pooling: the divisor is then the window clipped to
// the padded input [-ph, h + ph) x [-pw, w + pw), which is kh*kw except in ceil_mode's last
// windows: PyTorch's rule).
struct PoolGeom {
  int64_t n = 0, h = 0, w = 0, c = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  bool ceil_mode = false;
  int64_t oh = 0, ow = 0;
};

// Fills oh/ow from the rest; throws std::invalid_argument on a bad geometry.
void pool_geom_finish(PoolGeom& g);

// Max of +-1 values = AND of their bits (bit 1 = -1): the output is -1 only when every
// in-bounds tap is -1. Channel padding bits stay 0 (AND of zeros).
void maxpool_bits(const uint64_t* x, uint64_t* y, const PoolGeom& g, Isa isa, int threads);
void maxpool_int8(const int8_t* x, int8_t* y, const PoolGeom& g, Isa isa, int threads);
// float32 max (float-shortcut stems): acc starts at -inf and takes acc = (acc > t) ? acc : t per
// in-bounds tap in window order (the vmaxps rule, so every ISA returns identical bits; a NaN
// tap is not guaranteed to propagate, unlike PyTorch).
void maxpool_f32(const float* x, float* y, const PoolGeom& g, Isa isa, int threads);

// int8 average: s = sum of in-bounds taps (int32), d = kh*kw (count_include_pad) or the
// number of in-bounds taps; q = clamp(floor((2*s + d) / (2*d)), -127, 127), i.e.
// round(s / d) with halves rounded UP (towards +inf), like the (b) output stage.
void avgpool_int8(const int8_t* x, int8_t* y, const PoolGeom& g, bool count_include_pad,
                  Isa isa, int threads);
// float32 average: s = ((0 + t0) + t1) + ... over the in-bounds taps in (i, j) row-major
// window order, y = s / float(d). Every SIMD lane performs exactly these operations.
void avgpool_f32(const float* x, float* y, const PoolGeom& g, bool count_include_pad, Isa isa,
                 int threads);

// Global average pooling over hw = H*W pixels of an (n, hw, c) tensor -> (n, c).
// int8 -> int8: same rounding as avgpool_int8 with d = hw.
void global_avgpool_int8(const int8_t* x, int8_t* y, int64_t n, int64_t hw, int64_t c, Isa isa,
                         int threads);
// int8 -> float32 (classifier head): y = float(s) * m with m = float32(scale / hw) (computed
// in double, rounded once); s is the exact integer sum.
void global_avgpool_int8_f32(const int8_t* x, float* y, int64_t n, int64_t hw, int64_t c,
                             float scale, Isa isa, int threads);
// float32 -> float32: s summed over pixels in order (0 + x0) + x1 + ..., y = s / float(hw).
void global_avgpool_f32(const float* x, float* y, int64_t n, int64_t hw, int64_t c, Isa isa,
                        int threads);

}  // namespace onebit
