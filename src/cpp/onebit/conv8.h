// int8 convolution (first layer of a BNN, int8 shortcut / transition convs, int8 dense layers).
//
// Input: NHWC uint8 or int8 with a per-input-channel zero point zp[c] (the value that means
// real 0; it is also the padding value, so a padded tap contributes exactly nothing).
// Weights: int8 OHWI (cout, kh, kw, cin). Accumulator, exact in int32 (the dispatcher proves
// K * max|x - zp| * 128 <= 2^31 - 1 with K = kh*kw*cin, else std::invalid_argument):
//   y[n,oy,ox,o] = sum over in-bounds taps (i,j) and c of (x[n,iy,ix,c] - zp[c]) * w[o,i,j,c]
// with iy = oy*sh - ph + i, ix = ox*sw - pw + j (PyTorch geometry, any stride and padding; ph_end /
// pw_end rows / columns after the input, Keras "same" puts the odd one there).
// Output stage: OutputStage (onebit/output.h), the same as the binary convolution's.
//
// Weights are re-laid out once per ISA by conv8_prepare (what a network does at load time) and
// the prepared form is passed as Conv8Args::prepared; a call without it prepares on the fly.
// Kernels: scalar (the executable spec), avx2 (int16 image x int16 weights, vpmaddwd: exact),
// avxvnni (256-bit vpdpbusd) and avx512 (512-bit vpdpbusd); the two VNNI kernels take unsigned
// input bytes u = x (uint8) or x ^ 0x80 (int8) and subtract a per-channel zero-point correction.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "onebit/isa.h"
#include "onebit/output.h"

namespace onebit {

struct Conv8Geom {
  int64_t n = 0, h = 0, w = 0, cin = 0, cout = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;  // ph, pw: padding before (top, left)
  int ph_end = kSymmetric, pw_end = kSymmetric;       // after (bottom, right); kSymmetric: = ph, pw
  int64_t oh = 0, ow = 0;
  static constexpr int kSymmetric = -1;
};

// Weights of one int8 conv laid out for one ISA's kernel, with the zero points and input
// signedness they were prepared for. Immutable once built; shareable across threads and calls.
struct Conv8Prepared {
  Isa isa = Isa::scalar;
  int64_t cout = 0, cin = 0;
  int kh = 0, kw = 0;
  bool x_signed = false;
  std::vector<int32_t> zero_point;  // (cin,)
  int64_t ybound = 0;               // max |y| = K * max|x - zp| * 128 (proved <= 2^31 - 1)
  // scalar: w8 = the OHWI weights as given.
  // avx2: w16 = [cout block of 16][kh][pair of kw*cin][16][2] int16, zero padded.
  // avxvnni / avx512: w8 = [cout block of L][kh][quad of kw*cin][L][4] int8, zero padded
  // (L = 8 / 16 int32 lanes); corr[o] = sum over all taps of zu[c] * w[o, tap, c] mod 2^32,
  // zu = zp (+128 for int8 input) as bytes (0 <= zu <= 255; else the kernel is avx2's).
  Isa kernel = Isa::scalar;  // the kernel the layout is for
  int64_t lanes = 0;
  std::vector<int8_t> w8;
  std::vector<int16_t> w16;
  std::vector<int32_t> corr;
  std::vector<uint8_t> zu;
};

struct Conv8Args {
  const void* x = nullptr;            // (n, h, w, cin) uint8 or int8
  bool x_signed = false;              // int8 input when true
  const int32_t* zero_point = nullptr;  // (cin,), each in [-255, 255]; not read with `prepared`
  const int8_t* w = nullptr;          // (cout, kh, kw, cin); not read with `prepared`
  const Conv8Prepared* prepared = nullptr;  // optional: weights prepared for the call's ISA
  void* y = nullptr;  // (n, oh, ow, cout) int32/int8/float, or (n, oh, ow, W64) bits
  Conv8Geom g;
  OutputStage stage;
};

// Fills g.oh / g.ow; throws std::invalid_argument on a bad geometry.
void conv8_geom_finish(Conv8Geom& g);

// Lays out OHWI weights (cout, kh, kw, cin) for `isa`, for inputs of the given signedness and
// zero points (nullptr: all 0). std::invalid_argument on bad sizes, zero points outside
// [-255, 255], a K that can overflow the int32 accumulator, or an unsupported ISA.
std::shared_ptr<const Conv8Prepared> conv8_prepare(const int8_t* w, int64_t cout, int kh, int kw,
                                                   int64_t cin, const int32_t* zero_point,
                                                   bool x_signed, Isa isa, int threads);

// conv8_prepare without the CPU check: the layout for `isa`'s kernel even where this CPU cannot
// run it (weights prepared for another machine, kernels run under emulation).
std::shared_ptr<const Conv8Prepared> conv8_layout(const int8_t* w, int64_t cout, int kh, int kw,
                                                  int64_t cin, const int32_t* zero_point,
                                                  bool x_signed, Isa isa);

// Validates everything it can see (geometry, zero points, stage parameters, the int32
// accumulator bound, prepared weights matching the call) and runs the ISA's kernel.
void conv8(const Conv8Args& args, Isa isa, int threads);

// Number of output elements per pixel (cout, or ceil(cout/64) words for bits).
int64_t conv8_out_per_pixel(const Conv8Geom& g, OutputKind kind);

// Runs an L1-resident int8 multiply-add loop (the instruction sequence of `isa`'s int8 conv
// kernel: vpdpbusd zmm / ymm, vpmaddwd + vpaddd, scalar multiply-add) for about `seconds` on one
// thread and returns the achieved int8 multiply-adds per second.
double int8_mac_peak(Isa isa, double seconds);

}  // namespace onebit
