// Buffer planning for one batch size: every value an op writes gets a slot of one arena; a slot
// returns to the free list once every reader of its value has run (liveness over the op list),
// and a later value takes the smallest free slot that fits (or grows the largest one), so the
// arena holds the peak of the live values, not their sum. flatten outputs are views of their
// input's slot; the graph input is the caller's buffer and never a slot. With fusion
// (fusion.h), an op's reads and writes are those of the fused graph: a conv holds the slots of
// what it stores (its fused add's output, its fused bitpack's), values it no longer stores get
// none (slot -1), and a fused op reads nothing.
#pragma once
#include <cstdint>
#include <vector>

#include "onebit/runtime/fusion.h"
#include "onebit/runtime/model.h"

namespace onebit::rt {

struct Plan {
  int64_t n = 0;
  bool share = true;
  std::vector<int> slot;           // per value: slot index, -1 for the graph input
  std::vector<int64_t> offset;     // per slot: byte offset in the arena (64-byte aligned)
  std::vector<int64_t> slot_bytes; // per slot
  int64_t arena_bytes = 0;
};

// Plans batch n of the graph fused as `f`; with share = false every value keeps its own slot
// (for run_values).
Plan make_plan(const Model& m, int64_t n, bool share, const Fusion& f);

}  // namespace onebit::rt
