// float32 dense dispatcher. avx512 runs the AVX2 kernel: the 8-lane summation order is the
// contract (onebit/densef.h), and the classifier head is tiny next to the binary layers.
#include "onebit/densef.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "onebit/kernels/densef_kernels.h"
#include "onebit/threadpool.h"

namespace onebit {

void dense_f32(const float* x, const float* w, const float* bias, float* y, int64_t n,
               int64_t in, int64_t out, Isa isa, int threads) {
  if (threads < 0) throw std::invalid_argument("threads must be >= 1 (or 0/None for the default)");
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("ISA ") + isa_name(isa) +
                                " is not supported by this CPU/build");
  if (n < 0 || in < 1 || out < 1)
    throw std::invalid_argument("float dense: need in_features >= 1 and out_features >= 1");
  std::vector<float> zeros;
  if (!bias) {
    zeros.assign(out, 0.0f);
    bias = zeros.data();
  }
  auto fn = kernels::dense_f32_scalar;
#if defined(ONEBIT_HAVE_X86)
  if (kernel_isa(isa) == Isa::avx2 || isa == Isa::avx512) fn = kernels::dense_f32_avx2;
#endif
  parallel_for(kernels::dense_f32_items(n, in, out), threads,
               [&](int64_t b0, int64_t b1) { fn(x, w, bias, y, n, in, out, b0, b1); });
}

}  // namespace onebit
