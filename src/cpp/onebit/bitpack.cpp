// bitpack dispatcher: validates, then packs pixels in parallel with the kernel of the op's table
// row for the ISA (onebit/kernel_table.h).
#include "onebit/bitpack.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "onebit/kernel_table.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {

ONEBIT_AVX2_AVX512_TABLE(bitpack_f32, ONEBIT_NEON_ROW);
ONEBIT_AVX2_AVX512_TABLE(bitpack_i8, ONEBIT_NEON_ROW);

template <typename T, typename K>
void run(const T* x, int64_t pixels, int64_t channels, uint64_t* out, int threads, K kernel) {
  // About 16 KiB of input per task keeps the split coarse for small tensors, and a thread gets
  // at least 32 KiB (~10 microseconds of packing, several fork/joins): smaller tensors pack on
  // the caller.
  const int64_t per = std::max<int64_t>(1, 16384 / static_cast<int64_t>(sizeof(T) * channels));
  const int64_t tasks = (pixels + per - 1) / per;
  parallel_for(tasks, threads_for(tasks, 2, threads), [&](int64_t t0, int64_t t1) {
    kernel(x, t0 * per, std::min(pixels, t1 * per), channels, out);
  });
}

void check(int64_t pixels, int64_t channels) {
  if (pixels < 0 || channels < 1) throw std::invalid_argument("bitpack needs at least one channel");
}
}  // namespace

void bitpack_f32(const float* x, int64_t pixels, int64_t channels, uint64_t* out, Isa isa, int threads) {
  check(pixels, channels);
  run(x, pixels, channels, out, threads, bitpack_f32_table.get(isa));
}

BitpackI8Kernel bitpack_i8_kernel(Isa isa) { return bitpack_i8_table.get(isa); }

void bitpack_i8(const int8_t* x, int64_t pixels, int64_t channels, uint64_t* out, Isa isa, int threads) {
  check(pixels, channels);
  run(x, pixels, channels, out, threads, bitpack_i8_table.get(isa));
}

}  // namespace onebit
