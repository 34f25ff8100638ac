// Work split shared by every bconv kernel: one task = one output row (n, oh) x one chunk of
// output channels. Chunks are multiples of 64 channels so packed output words never straddle
// two tasks; each output element is computed by exactly one task with the same code, so the
// result never depends on the thread count.
#pragma once
#include <algorithm>
#include <cstdint>

#include "onebit/bconv.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {
namespace {

struct TaskSplit {
  int64_t rows = 0;    // N * OH
  int64_t chunk = 0;   // channels per chunk (multiple of 64, or all of them)
  int64_t chunks = 0;  // ceil(cout / chunk)
  int64_t tasks() const { return rows * chunks; }
};

inline TaskSplit split_tasks(const BConvShape& s, int threads) {
  TaskSplit t;
  t.rows = s.n * s.out_h();
  const int64_t blocks64 = (s.cout + 63) / 64;
  // Enough tasks for load balance (about 4 per thread) when there are few output rows.
  int64_t want = threads <= 1 ? 1 : std::max<int64_t>(1, (4 * threads + t.rows - 1) / std::max<int64_t>(1, t.rows));
  want = std::min(want, blocks64);
  t.chunk = ((blocks64 + want - 1) / want) * 64;
  t.chunks = (s.cout + t.chunk - 1) / t.chunk;
  return t;
}

// Valid kernel-tap range [k0, k1) for output coordinate o along an axis of input size `in`:
// the taps with 0 <= o*stride - pad + k < in (TRUE-ZERO padding skips the others).
inline void tap_range(int64_t o, int64_t stride, int64_t pad, int64_t ksize, int64_t in,
                      int64_t& k0, int64_t& k1) {
  const int64_t start = o * stride - pad;
  k0 = std::max<int64_t>(0, -start);
  k1 = std::min<int64_t>(ksize, in - start);
  if (k1 < k0) k1 = k0;
}

// Interior output columns [in0, in1) of a row: every kw tap in bounds (tiles there need no
// edge handling); in0 <= in1 <= OW.
inline void interior_columns(const BConvShape& s, int64_t& in0, int64_t& in1) {
  const int64_t OW = s.out_w();
  in0 = std::min((s.pad + s.stride - 1) / s.stride, OW);
  in1 = s.w + s.pad - s.kw >= 0 ? (s.w + s.pad - s.kw) / s.stride + 1 : 0;
  in1 = std::max(in0, std::min(in1, OW));
}

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

}  // namespace
}  // namespace onebit::kernels
