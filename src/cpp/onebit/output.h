// The fused output stage of the integer convolutions (binary bconv2d / bdense and int8 conv8):
// one description of what happens to the int32 accumulator y of each output channel before it is
// stored. The math and its folding are in docs/format.md §5; the scalar form every SIMD writer
// must equal is kernels/output_stage.h, the AVX2 form kernels/output_avx2.h.
#pragma once
#include <cstdint>

#include "onebit/isa.h"

namespace onebit {

enum class OutputKind : int { int32 = 0, bits = 1, int8 = 2, f32 = 3 };

// What the executor fuses after an int8 output stage (docs/format.md §5 (d), (e)), applied by every
// kernel to each block of outputs right after the stage wrote it (still in cache), so a conv and
// the ops that read only its result make one pass over memory instead of one per op:
// (d) residual add: q = add_int8(q, residual) with the add's multipliers (onebit/add.h), the
//     conv's output as one operand and an earlier value as the other;
// (e) bitpack: packed = bitpack_i8(q) (onebit/bitpack.h), the input of the next binary op.
// It runs the add and bitpack kernels of the call's ISA on the same int8 values the unfused ops
// read, so the fused graph equals the unfused one bit for bit. Built by make_stage_tail.
struct StageTail {
  const int8_t* residual = nullptr;  // (pixels, cout), the layout of the output; or nullptr
  int32_t m_out = 0, m_res = 0;      // multipliers of the conv's output and of the residual
  int shift = 0;                     // reduced as add_int8 reduces them
  uint64_t* packed = nullptr;        // (pixels, ceil(cout/64)) words; or nullptr
  void (*add)(const int8_t*, const int8_t*, int8_t*, int32_t, int32_t, int, int64_t, int64_t) = nullptr;
  void (*pack)(const int8_t*, int64_t, int64_t, int64_t, uint64_t*) = nullptr;
};

// Per-output-channel parameters of the fused output stage (docs/format.md §5).
// Only the pointers of the chosen kind are read.
struct OutputStage {
  OutputKind kind = OutputKind::int32;
  // (a) bits: bit = (y < t) if d = +1, (y > t) if d = -1 (bit 1 = -1).
  const int32_t* threshold = nullptr;
  const int8_t* direction = nullptr;
  // (b) int8: q = clamp((y*M + B + 2^(S-1)) >> S, -127, 127) in int64, 0 < S < 32.
  const int32_t* multiplier = nullptr;
  const int32_t* bias = nullptr;
  int shift = 0;
  // (c) float: out = float32(y) * scale + bias (two roundings, never fused).
  const float* scale = nullptr;
  const float* fbias = nullptr;
  // int8 only: ops fused after the stage (StageTail), or nullptr.
  const StageTail* tail = nullptr;
};

// Bytes per stored output element: int32 4, bits 8 (one uint64 word per 64 channels), int8 1,
// float32 4.
inline int output_elem_size(OutputKind kind) {
  return kind == OutputKind::bits ? 8 : kind == OutputKind::int8 ? 1 : 4;
}

// std::invalid_argument unless the parameters of `st.kind` are present and valid for `cout`
// channels (directions +1/-1, 0 < shift < 32), and a tail only follows an int8 stage.
void check_output_stage(const OutputStage& st, int64_t cout);

// The tail of an int8 stage for `isa`: the residual add with the add op's (ma for the conv's
// output, mb for the residual, shift), when `residual` is set; bitpack into `packed`, when set.
// std::invalid_argument for a shift outside [1, 31].
StageTail make_stage_tail(Isa isa, const int8_t* residual, int32_t m_out, int32_t m_res, int shift,
                          uint64_t* packed);

// Applies st.tail (when set) to the int8 outputs a kernel has just written: pixels
// [pix0, pix0 + npix), channels [c0, c1) of `out` (pixels x cout). c0 is a multiple of 64 and c1
// a multiple of 64 or cout (the split of every kernel with packed outputs), so the packed words
// of the block are whole. Each output must pass through here exactly once.
void apply_stage_tail(const OutputStage& st, int64_t npix, int64_t pix0, int64_t c0, int64_t c1,
                      int64_t cout, void* out);

// Output elements per pixel: cout, or ceil(cout/64) words for bits.
inline int64_t output_per_pixel(OutputKind kind, int64_t cout) {
  return kind == OutputKind::bits ? (cout + 63) / 64 : cout;
}

}  // namespace onebit
