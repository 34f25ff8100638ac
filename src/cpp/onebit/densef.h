// float32 dense layer (the classifier head): y[n, o] = dot(x[n, :], w[o, :]) + bias[o].
//
// The summation order is part of the contract so every ISA returns identical floats:
// eight partial sums acc[j] (j = 0..7) start at +0.0f; element i (i = 0 .. in8-1, in8 = in
// rounded up to a multiple of 8, with x*w = 0 for i >= in) is added as
// acc[i % 8] = acc[i % 8] + float(x[i] * w[i]) (product rounded, then sum rounded; never an
// FMA); then s = ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7)) and
// y = s + bias[o] (bias 0 when absent). This equals PyTorch's x @ w.T + b to float32 rounding
// (PyTorch sums in another order), which is how the converter compares the last layer.
//
// Kernels: scalar (the executable spec), avx2 (dot products of 8-lane partial sums, also run for
// few rows on AVX-512) and, on AVX-512 for n >= kDenseF32ManyRows rows (1x1 float convolutions
// over pixels), outer products over the transposed weights (DenseF32Prepared; a network
// prepares them once, a call without them transposes on the fly). All equal bit for bit.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "onebit/isa.h"

namespace onebit {

constexpr int64_t kDenseF32ManyRows = 4;

// W^T of a (out, in) weight matrix: (in, ld) floats, ld = out rounded up to 16, zero padded.
struct DenseF32Prepared {
  int64_t in = 0, out = 0, ld = 0;
  std::vector<float> wt;
};

// The transposed weights for the many-rows kernel, or nullptr where `isa` does not use them.
std::shared_ptr<const DenseF32Prepared> dense_f32_prepare(const float* w, int64_t in, int64_t out, Isa isa);

void dense_f32(const float* x, const float* w, const float* bias, float* y, int64_t n,
               int64_t in, int64_t out, Isa isa, int threads,
               const DenseF32Prepared* prepared = nullptr);

}  // namespace onebit
