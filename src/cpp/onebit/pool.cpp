// Pooling dispatcher: validates geometry, takes the kernel from the op's table (one row per ISA,
// onebit/kernel_table.h), splits rows over threads. Fall-backs: avx512 runs the AVX2 kernels
// (pooling is bound by loads, not by vector width); neon on 32-bit ARM runs the scalar float
// kernels (its NEON flushes denormals to zero).
#include "onebit/pool.h"

#include <stdexcept>
#include <string>

#include "onebit/kernel_table.h"
#include "onebit/kernels/pool_kernels.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {

// Pooling costs about one operation per (output element, tap): a thread gets at least 64K of
// them, so the small maps of a network's tail run on the calling thread (no fork/join).
int row_threads(const PoolGeom& g, int threads) {
  return threads_for(g.n * g.oh * g.ow * g.c * g.kh * g.kw, int64_t{1} << 16, threads);
}

// Global average pooling's checks; int8 input (`int8_sums`) sums in int32 in the SIMD variants:
// |s| <= 128 * hw must fit.
void check_global(int64_t n, int64_t hw, int64_t c, int threads, bool int8_sums) {
  check_threads(threads);
  if (n < 0 || hw < 0 || c < 0) throw std::invalid_argument("negative tensor dimension");
  if (hw < 1) throw std::invalid_argument("global average pooling needs H*W >= 1");
  if (int8_sums && hw > (int64_t{1} << 23)) throw std::invalid_argument("global average pooling: H*W > 2^23");
}

}  // namespace

void pool_geom_finish(PoolGeom& g) {
  if (g.n < 0 || g.h < 1 || g.w < 1 || g.c < 0)
    throw std::invalid_argument("pooling input must have H >= 1, W >= 1 (got H=" +
                                std::to_string(g.h) + ", W=" + std::to_string(g.w) + ")");
  if (g.kh < 1 || g.kw < 1) throw std::invalid_argument("pooling kernel size must be >= 1");
  if (g.sh < 1 || g.sw < 1) throw std::invalid_argument("pooling stride must be >= 1");
  if (g.ph < 0 || g.pw < 0) throw std::invalid_argument("pooling padding must be >= 0");
  if (int64_t{g.kh} * g.kw > (int64_t{1} << 23))  // int8 window sums stay in int32 (128 * 2^23)
    throw std::invalid_argument("pooling window larger than 2^23 taps");
  if (2 * g.ph > g.kh || 2 * g.pw > g.kw)
    throw std::invalid_argument("pooling padding must be at most half the kernel size (got kernel " +
                                std::to_string(g.kh) + "x" + std::to_string(g.kw) + ", padding " +
                                std::to_string(g.ph) + "x" + std::to_string(g.pw) + ")");
  if (g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw)
    throw std::invalid_argument("pooling kernel " + std::to_string(g.kh) + "x" +
                                std::to_string(g.kw) + " is larger than the padded input " +
                                std::to_string(g.h + 2 * g.ph) + "x" +
                                std::to_string(g.w + 2 * g.pw));
  g.oh = (g.h + 2 * g.ph - g.kh + (g.ceil_mode ? g.sh - 1 : 0)) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.kw + (g.ceil_mode ? g.sw - 1 : 0)) / g.sw + 1;
  if (g.ceil_mode && (g.oh - 1) * g.sh >= g.h + g.ph) --g.oh;  // PyTorch: start inside input+pad
  if (g.ceil_mode && (g.ow - 1) * g.sw >= g.w + g.pw) --g.ow;
}

namespace {

ONEBIT_AVX2_TABLE(maxpool_bits, ONEBIT_NEON_ROW);
ONEBIT_AVX2_TABLE(maxpool_int8, ONEBIT_NEON_ROW);
ONEBIT_AVX2_TABLE(maxpool_f32, ONEBIT_NEON64_ROW);
ONEBIT_AVX2_TABLE(avgpool_int8, ONEBIT_NEON_ROW);
ONEBIT_AVX2_TABLE(avgpool_f32, ONEBIT_NEON64_ROW);
ONEBIT_AVX2_TABLE(gap_int8, ONEBIT_NEON_ROW);
ONEBIT_AVX2_TABLE(gap_int8_f32, ONEBIT_NEON64_ROW);
ONEBIT_AVX2_TABLE(gap_f32, ONEBIT_NEON64_ROW);

// Window pooling: output rows [r0, r1) of the N*OH rows per task, kernel(args..., r0, r1).
template <class Fn, class... Args>
void run_rows(const KernelTable<Fn>& table, const PoolGeom& g, Isa isa, int threads, Args... args) {
  check_threads(threads);
  const Fn fn = table.get(isa);
  parallel_for(g.n * g.oh, row_threads(g, threads), [&](int64_t a, int64_t b) { fn(args..., a, b); });
}

}  // namespace

void maxpool_bits(const uint64_t* x, uint64_t* y, const PoolGeom& g, Isa isa, int threads) {
  run_rows(maxpool_bits_table, g, isa, threads, x, y, g);
}

void maxpool_int8(const int8_t* x, int8_t* y, const PoolGeom& g, Isa isa, int threads) {
  run_rows(maxpool_int8_table, g, isa, threads, x, y, g);
}

void maxpool_f32(const float* x, float* y, const PoolGeom& g, Isa isa, int threads) {
  run_rows(maxpool_f32_table, g, isa, threads, x, y, g);
}

void avgpool_int8(const int8_t* x, int8_t* y, const PoolGeom& g, bool cip, Isa isa, int threads) {
  run_rows(avgpool_int8_table, g, isa, threads, x, y, g, cip);
}

void avgpool_f32(const float* x, float* y, const PoolGeom& g, bool cip, Isa isa, int threads) {
  run_rows(avgpool_f32_table, g, isa, threads, x, y, g, cip);
}

void global_avgpool_int8(const int8_t* x, int8_t* y, int64_t n, int64_t hw, int64_t c, Isa isa,
                         int threads) {
  check_global(n, hw, c, threads, true);
  auto fn = gap_int8_table.get(isa);
  parallel_for(n, threads, [&](int64_t a, int64_t b) { fn(x, y, hw, c, a, b); });
}

void global_avgpool_int8_f32(const int8_t* x, float* y, int64_t n, int64_t hw, int64_t c,
                             float scale, Isa isa, int threads) {
  check_global(n, hw, c, threads, true);
  const float m = static_cast<float>(static_cast<double>(scale) / static_cast<double>(hw));
  auto fn = gap_int8_f32_table.get(isa);
  parallel_for(n, threads, [&](int64_t a, int64_t b) { fn(x, y, hw, c, m, a, b); });
}

void global_avgpool_f32(const float* x, float* y, int64_t n, int64_t hw, int64_t c, Isa isa,
                        int threads) {
  check_global(n, hw, c, threads, false);
  auto fn = gap_f32_table.get(isa);
  parallel_for(n, threads, [&](int64_t a, int64_t b) { fn(x, y, hw, c, a, b); });
}

}  // namespace onebit
