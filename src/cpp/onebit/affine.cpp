// Per-channel float32 affine dispatcher: kernel from the op's table (onebit/kernel_table.h; NEON
// runs the scalar kernel), pixels split over threads.
#include "onebit/affine.h"

#include <stdexcept>

#include "onebit/kernel_table.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {

using AffineKernel = void (*)(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t);

const KernelTable<AffineKernel> affine_f32_table("affine_f32", {
    kernel_row(Isa::scalar, &kernels::affine_f32_scalar),
    ONEBIT_AVX2_AVX512_ROWS(&kernels::affine_f32_avx2, &kernels::affine_f32_avx512)
    fallback_row(Isa::neon, Isa::scalar),
});

constexpr int64_t kMinPerThread = 32768;  // values: a few microseconds, about a fork/join

}  // namespace

void affine_f32(const float* x, const float* scale, const float* bias, float* y, int64_t pixels,
                int64_t channels, Isa isa, int threads) {
  check_threads(threads);
  const AffineKernel fn = affine_f32_table.get(isa);
  if (pixels < 0 || channels < 1) throw std::invalid_argument("affine: need pixels >= 0 and channels >= 1");
  if (pixels == 0) return;  // an empty batch may come with null pointers
  if (!x || !scale || !bias || !y) throw std::invalid_argument("affine: null pointer");
  parallel_for(pixels, threads_for(pixels * channels, kMinPerThread, threads),
               [&](int64_t p0, int64_t p1) { fn(x, scale, bias, y, channels, p0, p1); });
}

}  // namespace onebit
