// int8 depthwise convolution (QuickNet stems and transition blocks: a KxK filter per channel on
// the int8 residual stream; depth multiplier 1).
//
// Input: NHWC int8 whose value 0 means real 0 (it is also the padding value, so a padded tap adds
// nothing). Weights: int8 HWC (kh, kw, c), one KxK filter per channel. Accumulator, exact in
// int32 (the dispatcher proves kh * kw * 128 * 128 <= 2^31 - 1, else std::invalid_argument):
//   y[n,oy,ox,c] = sum over in-bounds taps (i,j) of x[n,iy,ix,c] * w[i,j,c]
// with iy = oy*sh - ph + i, ix = ox*sw - pw + j (PyTorch geometry, any stride and padding).
// Output stage: OutputStage (onebit/output.h), the same as the int8 and binary convolutions'.
// Kernels: scalar (the executable spec), avx2 (16 channels per step: int8 -> int16, vpmullw,
// exact since |x * w| <= 2^14, widened and added in int32), avx512 (32 channels per step, masked
// channel tails), neon (vmull_s8 + vaddw_s16).
#pragma once
#include <cstdint>

#include "onebit/conv8.h"
#include "onebit/isa.h"
#include "onebit/output.h"

namespace onebit {

struct DwConv8Args {
  const int8_t* x = nullptr;  // (n, h, w, c)
  const int8_t* w = nullptr;  // (kh, kw, c)
  void* y = nullptr;          // (n, oh, ow, c) int32/int8/float, or (n, oh, ow, W64) bits
  Conv8Geom g;                // cin == cout == c
  OutputStage stage;
};

// Fills g.oh / g.ow; std::invalid_argument on a bad geometry or cin != cout.
void dwconv8_geom_finish(Conv8Geom& g);

// The largest |y| a layer with kh x kw taps can produce (kh * kw * 128 * 128);
// std::invalid_argument when that can overflow int32.
int64_t dwconv8_bound(int kh, int kw);

// Validates everything it can see (geometry, stage parameters, the int32 bound, pointers) and
// runs the ISA's kernel.
void dwconv8(const DwConv8Args& args, Isa isa, int threads);

// float32 depthwise convolution (the float-boundary and float-data form of the same layer):
//   y[n,oy,ox,c] = acc + bias[c], acc = +0.0, then acc = acc + float32(x * w[i,j,c]) for the
// in-bounds taps in row-major (i, j) order (product rounded, then the sum; no FMA). Every ISA
// performs exactly these float operations, so the result is the same bit for bit.
struct DwConvF32Args {
  const float* x = nullptr;     // (n, h, w, c)
  const float* w = nullptr;     // (kh, kw, c)
  const float* bias = nullptr;  // (c,)
  float* y = nullptr;           // (n, oh, ow, c)
  Conv8Geom g;                  // cin == cout == c, finished by dwconv8_geom_finish
};
void dwconv_f32(const DwConvF32Args& args, Isa isa, int threads);

}  // namespace onebit
