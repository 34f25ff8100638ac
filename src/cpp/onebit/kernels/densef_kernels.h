// Per-ISA float32 dense kernels (declarations). Work items: the N rows are cut into chunks of
// dense_f32_chunk_rows(in) rows and the outputs into blocks of four; item b covers row chunk
// b / ceil(out / 4) and output block b % ceil(out / 4). Each kernel computes items [b0, b1);
// bias is never null (zeros when absent). The split never changes a result.
#pragma once
#include <cstdint>

namespace onebit::kernels {

namespace {  // internal linkage: compiled into translation units with different ISA flags

// Rows per chunk: the chunk's x (~64 KB) stays in L2 while each block of 4 weight rows (in L1)
// meets every row of the chunk. Even, so the AVX2 kernel's row pairs never straddle chunks.
inline int64_t dense_f32_chunk_rows(int64_t in) {
  const int64_t rows = (int64_t{64} << 10) / (in * 4);
  return rows < 2 ? 2 : rows / 2 * 2;
}

inline int64_t dense_f32_items(int64_t n, int64_t in, int64_t out) {
  const int64_t chunk = dense_f32_chunk_rows(in);
  return (n + chunk - 1) / chunk * ((out + 3) / 4);
}

}  // namespace

void dense_f32_scalar(const float* x, const float* w, const float* bias, float* y, int64_t n,
                      int64_t in, int64_t out, int64_t b0, int64_t b1);
#if defined(ONEBIT_HAVE_NEON) && defined(__aarch64__)  // 32-bit NEON flushes denormals
void dense_f32_neon(const float* x, const float* w, const float* bias, float* y, int64_t n,
                    int64_t in, int64_t out, int64_t b0, int64_t b1);
#endif
#if defined(ONEBIT_HAVE_X86)
void dense_f32_avx2(const float* x, const float* w, const float* bias, float* y, int64_t n,
                    int64_t in, int64_t out, int64_t b0, int64_t b1);
#endif

}  // namespace onebit::kernels
