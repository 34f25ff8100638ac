// Per-ISA float32 dense kernels (declarations). Work items: the N rows are cut into chunks of
// dense_f32_chunk_rows(in) rows and the outputs into blocks of four; item b covers row chunk
// b / ceil(out / 4) and output block b % ceil(out / 4). Each kernel computes items [b0, b1);
// bias is never null (zeros when absent). The split never changes a result.
#pragma once
#include <cstdint>

namespace onebit::kernels {

namespace {  // internal linkage: compiled into translation units with different ISA flags

// Rows of `in` floats per chunk: about `bytes` of x, a multiple of `mult` rows (at least one).
inline int64_t dense_f32_rows_per(int64_t in, int64_t bytes, int64_t mult) {
  const int64_t rows = bytes / (in * 4);
  return rows < mult ? mult : rows / mult * mult;
}

// Work items of a kernel: row chunks x blocks of `block` outputs.
inline int64_t dense_f32_item_count(int64_t n, int64_t chunk, int64_t out, int64_t block) {
  return (n + chunk - 1) / chunk * ((out + block - 1) / block);
}

// The AVX2 and scalar kernels: the chunk's x (~64 KB) stays in L2 while each block of 4 weight
// rows (in L1) meets every row of the chunk; even, so the AVX2 kernel's row pairs never straddle
// chunks.
inline int64_t dense_f32_chunk_rows(int64_t in) { return dense_f32_rows_per(in, int64_t{64} << 10, 2); }

inline int64_t dense_f32_items(int64_t n, int64_t in, int64_t out) {
  return dense_f32_item_count(n, dense_f32_chunk_rows(in), out, 4);
}

// The AVX-512 many-rows kernel (dense_f32 with n >= kDenseF32ManyRows): chunks of ~128 KB of x
// in 4-row tiles, item b = row chunk b / ceil(out / 64) x output block of 64.
inline int64_t dense_f32_rows_chunk(int64_t in) { return dense_f32_rows_per(in, int64_t{128} << 10, 4); }

inline int64_t dense_f32_rows_items(int64_t n, int64_t in, int64_t out) {
  return dense_f32_item_count(n, dense_f32_rows_chunk(in), out, 64);
}

}  // namespace

void dense_f32_scalar(const float* x, const float* w, const float* bias, float* y, int64_t n,
                      int64_t in, int64_t out, int64_t b0, int64_t b1);
#if defined(ONEBIT_HAVE_NEON) && defined(__aarch64__)  // 32-bit NEON flushes denormals
void dense_f32_neon(const float* x, const float* w, const float* bias, float* y, int64_t n,
                    int64_t in, int64_t out, int64_t b0, int64_t b1);
#endif
#if defined(ONEBIT_HAVE_X86)
// wt: W^T, (in, ld) floats (DenseF32Prepared, onebit/densef.h).
void dense_f32_rows_avx512(const float* x, const float* wt, int64_t ld, const float* bias, float* y,
                           int64_t n, int64_t in, int64_t out, int64_t b0, int64_t b1);
void dense_f32_avx2(const float* x, const float* w, const float* bias, float* y, int64_t n,
                    int64_t in, int64_t out, int64_t b0, int64_t b1);
#endif

}  // namespace onebit::kernels
