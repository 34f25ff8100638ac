// float32 dense dispatcher; kernel from the op's table (onebit/kernel_table.h). avx512 runs the
// AVX2 kernel for few rows (the classifier head) and its outer-product kernel over the transposed
// weights for many (onebit/densef.h). neon on 32-bit ARM runs the scalar kernel.
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

std::shared_ptr<const DenseF32Prepared> dense_f32_prepare(const float* w, int64_t in, int64_t out, Isa isa) {
  if (isa != Isa::avx512) return nullptr;
  if (!w || in < 1 || out < 1)
    throw std::invalid_argument("float dense: need weights with in_features >= 1 and out_features >= 1");
  auto p = std::make_shared<DenseF32Prepared>();
  p->in = in;
  p->out = out;
  p->ld = (out + 15) / 16 * 16;
  p->wt.assign(static_cast<size_t>(in * p->ld), 0.0f);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) p->wt[static_cast<size_t>(i * p->ld + o)] = w[o * in + i];
  return p;
}

void dense_f32(const float* x, const float* w, const float* bias, float* y, int64_t n,
               int64_t in, int64_t out, Isa isa, int threads, const DenseF32Prepared* prepared) {
  check_threads(threads);
  const auto fn = dense_f32_table.get(isa);
  if (n < 0 || in < 1 || out < 1)
    throw std::invalid_argument("float dense: need in_features >= 1 and out_features >= 1");
  if (prepared && (prepared->in != in || prepared->out != out))
    throw std::invalid_argument("float dense: weights were prepared for " + std::to_string(prepared->in) + " -> " +
                                std::to_string(prepared->out) + " features, not " + std::to_string(in) + " -> " +
                                std::to_string(out));
  std::vector<float> zeros;
  if (!bias) {
    zeros.assign(out, 0.0f);
    bias = zeros.data();
  }
#if defined(ONEBIT_HAVE_X86)
  if (isa == Isa::avx512 && n >= kDenseF32ManyRows) {
    std::shared_ptr<const DenseF32Prepared> local;
    if (!prepared) {
      local = dense_f32_prepare(w, in, out, isa);
      prepared = local.get();
    }
    const float* wt = prepared->wt.data();
    const int64_t ld = prepared->ld;
    parallel_for(kernels::dense_f32_rows_items(n, in, out), threads, [&](int64_t b0, int64_t b1) {
      kernels::dense_f32_rows_avx512(x, wt, ld, bias, y, n, in, out, b0, b1);
    });
    return;
  }
#endif
  parallel_for(kernels::dense_f32_items(n, in, out), threads,
               [&](int64_t b0, int64_t b1) { fn(x, w, bias, y, n, in, out, b0, b1); });
}

}  // namespace onebit
