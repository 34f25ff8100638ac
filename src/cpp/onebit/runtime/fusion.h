// Which ops the executor fuses into the int8 output stage of the conv before them (StageTail,
// onebit/output.h), decided once per model from its graph:
// (a) an int8 residual add, into the conv (bconv2d / conv2d_u8 / conv2d_i8 with an int8 stage)
//     that produces one of its operands, when the add is that value's only reader and the other
//     operand already exists when the conv runs (its producer comes first; the later of two
//     eligible convs is taken). The conv then writes the add's output and its own is never stored.
// (b) a bitpack of an int8 value, into the conv that writes that value (itself or through a
//     fused add). The conv writes the int8 value and its bits; other readers of the int8 value
//     still read it.
// The fused op computes the same integers with the same kernels (docs/format.md §5 (d), (e)), so the
// fused graph equals the unfused one bit for bit; ONEBIT_FUSION=1 turns fusion on (off by default).
#pragma once
#include <vector>

#include "onebit/runtime/model.h"

namespace onebit::rt {

struct Fusion {
  std::vector<int> add_into;   // per op: the add op fused into this conv, or -1
  std::vector<int> pack_into;  // per op: the bitpack op fused into this conv, or -1
  std::vector<int> host;       // per op: the conv an add / bitpack runs inside, or -1
  bool any() const;
  // Values op i writes / reads once fusion applies (a fused op: none; a conv with a fused add:
  // the add's output, and the add's other operand among its reads).
  std::vector<int> writes(const Model& m, size_t i) const;
  std::vector<int> reads(const Model& m, size_t i) const;
  // The value op i's conv stores its int8 result in (its own output, or its fused add's).
  int int8_output(const Model& m, size_t i) const;
  // The residual operand of the add fused into op i (-1 when none).
  int residual(const Model& m, size_t i) const;
};

// The fusion of `m` (nothing fused when `enabled` is false).
Fusion plan_fusion(const Model& m, bool enabled);

// True when the environment sets ONEBIT_FUSION=1; the unfused graph otherwise.
bool fusion_default();

}  // namespace onebit::rt
