// float32 dense dispatcher; kernel from the op's table (onebit/kernel_table.h). avx512 runs the AVX2 kernel: the 8-lane summation order is the
// contract (onebit/densef.h), and the classifier head is tiny next to the binary layers. neon on
// 32-bit ARM runs the scalar kernel.
#include "onebit/densef.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "onebit/kernel_table.h"
#include "onebit/kernels/densef_kernels.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {
ONEBIT_AVX2_TABLE(dense_f32, ONEBIT_NEON64_ROW);
}  // namespace

void dense_f32(const float* x, const float* w, const float* bias, float* y, int64_t n,
               int64_t in, int64_t out, Isa isa, int threads) {
  check_threads(threads);
  const auto fn = dense_f32_table.get(isa);
  if (n < 0 || in < 1 || out < 1)
    throw std::invalid_argument("float dense: need in_features >= 1 and out_features >= 1");
  std::vector<float> zeros;
  if (!bias) {
    zeros.assign(out, 0.0f);
    bias = zeros.data();
  }
  parallel_for(kernels::dense_f32_items(n, in, out), threads,
               [&](int64_t b0, int64_t b1) { fn(x, w, bias, y, n, in, out, b0, b1); });
}

}  // namespace onebit
