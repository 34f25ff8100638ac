// bitpack: binarize an NHWC float32 or int8 tensor into packed words along channels.
// bit = (x < 0) (bit 1 = -1; sign(0) = +1; NaN compares false so packs as +1), channel c ->
// word c/64, bit c%64; padding bits of the last word are 0 (docs/format.md §1-2).
#pragma once
#include <cstdint>

#include "onebit/isa.h"

namespace onebit {

// x has `pixels` rows of `channels` values; out has `pixels` rows of ceil(channels/64) words.
void bitpack_f32(const float* x, int64_t pixels, int64_t channels, uint64_t* out, Isa isa, int threads);
void bitpack_i8(const int8_t* x, int64_t pixels, int64_t channels, uint64_t* out, Isa isa, int threads);

// The int8 row kernel of `isa`'s table row: packs pixels [p0, p1) of x (pixels x c) into out.
using BitpackI8Kernel = void (*)(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
BitpackI8Kernel bitpack_i8_kernel(Isa isa);

namespace kernels {
// Per-ISA row kernels: pack pixels [p0, p1).
void bitpack_f32_scalar(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
void bitpack_i8_scalar(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
void bitpack_f32_avx2(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
void bitpack_i8_avx2(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
void bitpack_f32_avx512(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
void bitpack_i8_avx512(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
void bitpack_f32_neon(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
void bitpack_i8_neon(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out);
}  // namespace kernels

}  // namespace onebit
