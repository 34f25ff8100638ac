// int8 convolution (first layer of a BNN, 1x1 int8 downsample shortcuts, int8 dense layers).
//
// Input: NHWC uint8 or int8 with a per-input-channel zero point zp[c] (the value that means
// real 0; it is also the padding value, so a padded tap contributes exactly nothing).
// Weights: int8 OHWI (cout, kh, kw, cin). Accumulator, exact in int32 (the dispatcher proves
// K * max|x - zp| * 128 <= 2^31 - 1 with K = kh*kw*cin, else std::invalid_argument):
//   y[n,oy,ox,o] = sum over in-bounds taps (i,j) and c of (x[n,iy,ix,c] - zp[c]) * w[o,i,j,c]
// with iy = oy*sh - ph + i, ix = ox*sw - pw + j (PyTorch geometry, any stride and padding).
// Output stages, per output channel o (docs/format.md §5, same as the binary conv):
//   int32: y itself;
//   bits : bit = (y < t[o]) if d[o] = +1, (y > t[o]) if d[o] = -1, packed along cout into
//          uint64 words LSB-first, padding bits 0  (BN + sign folded);
//   int8 : q = clamp((y*M[o] + B[o] + 2^(S-1)) >> S, -127, 127) in int64, 1 <= S <= 31
//          (BN + clip block folded, BNN-Clip);
//   f32  : float(y) * scale[o] + bias[o], two roundings, never fused.
#pragma once
#include <cstdint>

#include "onebit/isa.h"

namespace onebit {

struct Conv8Geom {
  int64_t n = 0, h = 0, w = 0, cin = 0, cout = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t oh = 0, ow = 0;
};

enum class Conv8Out : int { int32 = 0, bits = 1, int8 = 2, f32 = 3 };

struct Conv8Stage {
  Conv8Out kind = Conv8Out::int32;
  const int32_t* threshold = nullptr;  // bits
  const int8_t* direction = nullptr;   // bits: +1 or -1
  const int32_t* multiplier = nullptr; // int8
  const int32_t* bias = nullptr;       // int8
  int shift = 0;                       // int8
  const float* scale = nullptr;        // f32
  const float* fbias = nullptr;        // f32
};

struct Conv8Args {
  const void* x = nullptr;            // (n, h, w, cin) uint8 or int8
  bool x_signed = false;              // int8 input when true
  const int32_t* zero_point = nullptr;  // (cin,), each in [-255, 255]
  const int8_t* w = nullptr;          // (cout, kh, kw, cin)
  void* y = nullptr;                  // (n, oh, ow, cout) int32/int8/float, or (n, oh, ow, W64) bits
  Conv8Geom g;
  Conv8Stage stage;
};

// Fills g.oh / g.ow; throws std::invalid_argument on a bad geometry.
void conv8_geom_finish(Conv8Geom& g);

// Validates everything it can see (geometry, zero points, stage parameters, the int32
// accumulator bound) and runs the ISA variant. avx512 uses VNNI (vpdpbusd) when the zero
// points allow the unsigned-input formulation, else the AVX2 kernel.
void conv8(const Conv8Args& args, Isa isa, int threads);

// Number of output elements per pixel (cout, or ceil(cout/64) words for bits).
int64_t conv8_out_per_pixel(const Conv8Geom& g, Conv8Out kind);

}  // namespace onebit
