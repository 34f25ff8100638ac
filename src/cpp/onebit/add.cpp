// Residual add dispatcher: validates parameters, takes the kernel from the op's table (one row
// per ISA, onebit/kernel_table.h; avx512 runs the AVX2 kernels), splits elements over threads.
// Chunks are aligned to 64 elements so every thread count runs the same vector/tail split.
#include "onebit/add.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "onebit/kernel_table.h"
#include "onebit/kernels/add_kernels.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {

ONEBIT_AVX2_TABLE(add_int8, ONEBIT_NEON_ROW);
ONEBIT_AVX2_TABLE(add_f32, ONEBIT_NEON64_ROW);

constexpr int64_t kBlock = 4096;  // elements per parallel work item
constexpr int64_t kMinPerThread = 32768;  // elements: a few microseconds, about a fork/join

}  // namespace

// Removes the common power of two of ma, mb and 2^(shift-1): with ma = 2^k ma', mb = 2^k mb',
// a*ma + b*mb + 2^(shift-1) = 2^k (a*ma' + b*mb' + 2^(shift-k-1)), so the floor division by
// 2^shift equals the division of the bracket by 2^(shift-k): the same q for every a, b, with
// smaller operands (equal scales, ma = mb = 2^shift, become ma = mb = 2, shift 1: int16 lanes).
void add_int8_reduce(int32_t& ma, int32_t& mb, int& shift) {
  int k = shift - 1;
  for (int32_t m : {ma, mb})
    if (m != 0) k = std::min(k, __builtin_ctz(static_cast<uint32_t>(m)));
  ma = static_cast<int32_t>(static_cast<int64_t>(ma) / (int64_t{1} << k));
  mb = static_cast<int32_t>(static_cast<int64_t>(mb) / (int64_t{1} << k));
  shift -= k;
}

AddInt8Kernel add_int8_kernel(Isa isa) { return add_int8_table.get(isa); }

void add_int8(const int8_t* a, const int8_t* b, int8_t* y, int64_t count, int32_t ma, int32_t mb,
              int shift, Isa isa, int threads) {
  check_threads(threads);
  if (count < 0) throw std::invalid_argument("negative element count");
  if (shift < 1 || shift > 31)
    throw std::invalid_argument("int8 add: shift must be in [1, 31], got " + std::to_string(shift));
  add_int8_reduce(ma, mb, shift);
  const auto fn = add_int8_table.get(isa);
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  parallel_for(blocks, threads_for(count, kMinPerThread, threads), [&](int64_t b0, int64_t b1) {
    fn(a, b, y, ma, mb, shift, b0 * kBlock, std::min(count, b1 * kBlock));
  });
}

void add_f32(const float* a, const float* b, float* y, int64_t count, Isa isa, int threads) {
  check_threads(threads);
  if (count < 0) throw std::invalid_argument("negative element count");
  const auto fn = add_f32_table.get(isa);
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  parallel_for(blocks, threads_for(count, kMinPerThread / 4, threads), [&](int64_t b0, int64_t b1) {
    fn(a, b, y, b0 * kBlock, std::min(count, b1 * kBlock));
  });
}

}  // namespace onebit
