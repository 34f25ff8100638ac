// The fused output stage of the integer convolutions (binary bconv2d / bdense and int8 conv8):
// one description of what happens to the int32 accumulator y of each output channel before it is
// stored. The math and its folding are in docs/format.md §5; the scalar form every SIMD writer
// must equal is kernels/output_stage.h, the AVX2 form kernels/output_avx2.h.
#pragma once
#include <cstdint>

namespace onebit {

enum class OutputKind : int { int32 = 0, bits = 1, int8 = 2, f32 = 3 };

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
};

// Bytes per stored output element: int32 4, bits 8 (one uint64 word per 64 channels), int8 1,
// float32 4.
inline int output_elem_size(OutputKind kind) {
  return kind == OutputKind::bits ? 8 : kind == OutputKind::int8 ? 1 : 4;
}

// Output elements per pixel: cout, or ceil(cout/64) words for bits.
// std::invalid_argument unless the parameters of `st.kind` are present and valid for `cout`
// channels (directions +1/-1, 0 < shift < 32).
void check_output_stage(const OutputStage& st, int64_t cout);

inline int64_t output_per_pixel(OutputKind kind, int64_t cout) {
  return kind == OutputKind::bits ? (cout + 63) / 64 : cout;
}

}  // namespace onebit
