// float32 dense layer (the classifier head): y[n, o] = dot(x[n, :], w[o, :]) + bias[o].
//
// The summation order is part of the contract so every ISA returns identical floats:
// eight partial sums acc[j] (j = 0..7) start at +0.0f; element i (i = 0 .. in8-1, in8 = in
// rounded up to a multiple of 8, with x*w = 0 for i >= in) is added as
// acc[i % 8] = acc[i % 8] + float(x[i] * w[i]) (product rounded, then sum rounded; never an
// FMA); then s = ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7)) and
// y = s + bias[o] (bias 0 when absent). This equals PyTorch's x @ w.T + b to float32 rounding
// (PyTorch sums in another order), which is how the converter compares the last layer.
#pragma once
#include <cstdint>

#include "onebit/isa.h"

namespace onebit {

void dense_f32(const float* x, const float* w, const float* bias, float* y, int64_t n,
               int64_t in, int64_t out, Isa isa, int threads);

}  // namespace onebit
