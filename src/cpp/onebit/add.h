// Residual add kernels: int8 with per-input rescaling and saturation, and float32.
#pragma once
#include <cstdint>

#include "onebit/isa.h"

namespace onebit {

// int8 residual add (BNN-Clip shortcuts: both inputs and the output live on symmetric int8
// grids with per-tensor scales sa, sb, so). Fixed point, computed exactly in int64:
//   q = clamp((a*ma + b*mb + 2^(shift-1)) >> shift, -127, 127)
// with int32 multipliers ma ~= round(sa/so * 2^shift), mb ~= round(sb/so * 2^shift),
// 1 <= shift <= 31, arithmetic shift (rounds half up). Equal scales: ma = mb = 2^shift gives the
// saturating sum clamp(a + b, -127, 127).
void add_int8(const int8_t* a, const int8_t* b, int8_t* y, int64_t count, int32_t ma, int32_t mb,
              int shift, Isa isa, int threads);

// The int8 add's kernel for `isa` (elements [i0, i1); multipliers reduced by
// add_int8_reduce) and the reduction add_int8 applies before calling it: the common power of two
// of ma, mb and 2^(shift-1) removed, the same q for every a, b with smaller operands.
using AddInt8Kernel = void (*)(const int8_t* a, const int8_t* b, int8_t* y, int32_t ma, int32_t mb,
                               int shift, int64_t i0, int64_t i1);
AddInt8Kernel add_int8_kernel(Isa isa);
void add_int8_reduce(int32_t& ma, int32_t& mb, int& shift);

// float32 elementwise y = a + b (one rounding; identical on every ISA).
void add_f32(const float* a, const float* b, float* y, int64_t count, Isa isa, int threads);

}  // namespace onebit
