#include "onebit/runtime/plan.h"

#include <algorithm>

namespace onebit::rt {

Plan make_plan(const Model& m, int64_t n, bool share, const Fusion& f) {
  const size_t nv = m.values.size(), nops = m.ops.size();
  std::vector<int> base(nv);  // the value whose buffer holds each value (flatten: its input's)
  for (size_t v = 0; v < nv; ++v) base[v] = static_cast<int>(v);
  for (const Op& op : m.ops)
    if (op.type == OpType::flatten) base[static_cast<size_t>(op.output)] = base[static_cast<size_t>(op.inputs[0])];
  std::vector<int64_t> last(nv, -1);  // last op reading each base value
  for (size_t i = 0; i < nops; ++i)
    for (int v : f.reads(m, i)) last[static_cast<size_t>(base[static_cast<size_t>(v)])] = static_cast<int64_t>(i);
  last[static_cast<size_t>(base[static_cast<size_t>(m.ops.back().output)])] = static_cast<int64_t>(nops);

  Plan p;
  p.n = n;
  p.share = share;
  p.slot.assign(nv, -1);
  std::vector<int> free;                      // free slots
  std::vector<std::pair<int, int>> live;      // (base value, slot)
  for (size_t i = 0; i < nops; ++i) {
    if (m.ops[i].type == OpType::flatten) continue;
    if (share) {
      std::vector<std::pair<int, int>> still;
      for (const auto& [v, s] : live) {
        if (last[static_cast<size_t>(v)] < static_cast<int64_t>(i)) free.push_back(s);
        else still.emplace_back(v, s);
      }
      live.swap(still);
    }
    for (int out : f.writes(m, i)) {
      const int64_t need = n * m.values[static_cast<size_t>(out)].sample_bytes();
      int pick = -1;
      for (size_t k = 0; k < free.size(); ++k) {  // smallest free slot that fits
        const int s = free[k];
        if (p.slot_bytes[static_cast<size_t>(s)] >= need &&
            (pick < 0 || p.slot_bytes[static_cast<size_t>(s)] < p.slot_bytes[static_cast<size_t>(free[static_cast<size_t>(pick)])]))
          pick = static_cast<int>(k);
      }
      if (pick < 0 && !free.empty()) {  // none fits: grow the largest free slot
        pick = 0;
        for (size_t k = 1; k < free.size(); ++k)
          if (p.slot_bytes[static_cast<size_t>(free[k])] > p.slot_bytes[static_cast<size_t>(free[static_cast<size_t>(pick)])])
            pick = static_cast<int>(k);
      }
      int s;
      if (pick >= 0) {
        s = free[static_cast<size_t>(pick)];
        free.erase(free.begin() + pick);
        p.slot_bytes[static_cast<size_t>(s)] = std::max(p.slot_bytes[static_cast<size_t>(s)], need);
      } else {
        s = static_cast<int>(p.slot_bytes.size());
        p.slot_bytes.push_back(need);
      }
      p.slot[static_cast<size_t>(out)] = s;
      live.emplace_back(out, s);
    }
  }
  for (size_t v = 0; v < nv; ++v)
    if (base[v] != static_cast<int>(v)) p.slot[v] = p.slot[static_cast<size_t>(base[v])];
  int64_t off = 0;
  for (int64_t b : p.slot_bytes) {
    p.offset.push_back(off);
    off += (b + 63) / 64 * 64;
  }
  p.arena_bytes = off;
  return p;
}

}  // namespace onebit::rt
