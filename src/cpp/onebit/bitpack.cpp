// bitpack dispatcher: validates, then packs pixels in parallel with the chosen ISA's kernel.
#include "onebit/bitpack.h"

#include <stdexcept>
#include <string>

#include "onebit/threadpool.h"

namespace onebit {

namespace {
template <typename T, typename F1, typename F2, typename F3>
void run(const T* x, int64_t pixels, int64_t channels, uint64_t* out, Isa isa, int threads,
         F1 scalar, F2 avx2, F3 avx512) {
  if (pixels < 0 || channels < 1) throw std::invalid_argument("bitpack needs at least one channel");
  if (!isa_supported(isa) || isa == Isa::neon)
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) + "' is not supported by this CPU or build");
  auto kernel = scalar;
#if defined(ONEBIT_HAVE_X86)
  if (kernel_isa(isa) == Isa::avx2) kernel = avx2;
  if (isa == Isa::avx512) kernel = avx512;
#else
  (void)avx2;
  (void)avx512;
#endif
  // About 16 KiB of input per task keeps the split coarse for small tensors.
  const int64_t per = std::max<int64_t>(1, 16384 / static_cast<int64_t>(sizeof(T) * channels));
  const int64_t tasks = (pixels + per - 1) / per;
  parallel_for(tasks, threads, [&](int64_t t0, int64_t t1) {
    kernel(x, t0 * per, std::min(pixels, t1 * per), channels, out);
  });
}
}  // namespace

void bitpack_f32(const float* x, int64_t pixels, int64_t channels, uint64_t* out, Isa isa, int threads) {
  run(x, pixels, channels, out, isa, threads, &kernels::bitpack_f32_scalar,
#if defined(ONEBIT_HAVE_X86)
      &kernels::bitpack_f32_avx2, &kernels::bitpack_f32_avx512
#else
      nullptr, nullptr
#endif
  );
}

void bitpack_i8(const int8_t* x, int64_t pixels, int64_t channels, uint64_t* out, Isa isa, int threads) {
  run(x, pixels, channels, out, isa, threads, &kernels::bitpack_i8_scalar,
#if defined(ONEBIT_HAVE_X86)
      &kernels::bitpack_i8_avx2, &kernels::bitpack_i8_avx512
#else
      nullptr, nullptr
#endif
  );
}

}  // namespace onebit
