// AVX2 float32 dense layer (also the 1x1 float convolution over N*H*W pixels).
//
// The summation order is the contract (onebit/densef.h): lane j of one ymm accumulator per
// (row n, output o) is the reference's acc[j] (products rounded, then added; never fused), and
// the final ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)) is done for eight accumulators at once by a
// transposition whose every addition is one of the reference's additions, with the same
// operands in the same order; so the result equals densef_scalar.cpp bit for bit.
//
// Register block: 2 rows x 4 outputs (8 accumulators; per 8 inputs 2 x loads + 4 w loads for
// 8 multiplies and 8 adds, the mul and add ports' limit). Weight reuse: the rows are cut into
// chunks whose x fits in L1/L2, and a work item is one chunk x 4 outputs, so the 4 weight rows
// (<= 16 KB for in <= 1024) stay in L1 while every row of the chunk passes.
#include <immintrin.h>

#include "onebit/kernels/densef_kernels.h"

namespace onebit::kernels {

namespace {

// 8 accumulators -> their 8 reduced sums s_k (k = 0..7) in order, each
// s = ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) with these operand orders.
inline __m256 reduce8x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5,
                        __m256 a6, __m256 a7) {
  // t_k = (a_k0 + a_k4, a_k1 + a_k5, a_k2 + a_k6, a_k3 + a_k7): [t0 | t1], [t2 | t3], ...
  const __m256 t01 = _mm256_add_ps(_mm256_permute2f128_ps(a0, a1, 0x20), _mm256_permute2f128_ps(a0, a1, 0x31));
  const __m256 t23 = _mm256_add_ps(_mm256_permute2f128_ps(a2, a3, 0x20), _mm256_permute2f128_ps(a2, a3, 0x31));
  const __m256 t45 = _mm256_add_ps(_mm256_permute2f128_ps(a4, a5, 0x20), _mm256_permute2f128_ps(a4, a5, 0x31));
  const __m256 t67 = _mm256_add_ps(_mm256_permute2f128_ps(a6, a7, 0x20), _mm256_permute2f128_ps(a6, a7, 0x31));
  // e_k = t_k0 + t_k2, f_k = t_k1 + t_k3: [e0 f0 e2 f2 | e1 f1 e3 f3], [e4 f4 e6 f6 | e5 f5 e7 f7]
  const __m256 ef0 = _mm256_add_ps(_mm256_shuffle_ps(t01, t23, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm256_shuffle_ps(t01, t23, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 ef1 = _mm256_add_ps(_mm256_shuffle_ps(t45, t67, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm256_shuffle_ps(t45, t67, _MM_SHUFFLE(3, 2, 3, 2)));
  // s_k = e_k + f_k: [s0 s2 s4 s6 | s1 s3 s5 s7]
  const __m256 s = _mm256_add_ps(_mm256_shuffle_ps(ef0, ef1, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm256_shuffle_ps(ef0, ef1, _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Rows x0 (and x1 when two) times weight rows w0..w3 over `in` inputs; returns the 8 sums
// [x0.w0 .. x0.w3, x1.w0 .. x1.w3] (the x1 half is garbage-free zeros when one row).
template <bool TWO>
inline __m256 block2x4(const float* x0, const float* x1, const float* w0, const float* w1,
                       const float* w2, const float* w3, int64_t full, int64_t in, __m256i mask) {
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
  __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  for (int64_t i = 0; i < full; i += 8) {
    const __m256 u = _mm256_loadu_ps(x0 + i);
    const __m256 v = TWO ? _mm256_loadu_ps(x1 + i) : u;
    __m256 w = _mm256_loadu_ps(w0 + i);
    a00 = _mm256_add_ps(a00, _mm256_mul_ps(u, w));
    if (TWO) a10 = _mm256_add_ps(a10, _mm256_mul_ps(v, w));
    w = _mm256_loadu_ps(w1 + i);
    a01 = _mm256_add_ps(a01, _mm256_mul_ps(u, w));
    if (TWO) a11 = _mm256_add_ps(a11, _mm256_mul_ps(v, w));
    w = _mm256_loadu_ps(w2 + i);
    a02 = _mm256_add_ps(a02, _mm256_mul_ps(u, w));
    if (TWO) a12 = _mm256_add_ps(a12, _mm256_mul_ps(v, w));
    w = _mm256_loadu_ps(w3 + i);
    a03 = _mm256_add_ps(a03, _mm256_mul_ps(u, w));
    if (TWO) a13 = _mm256_add_ps(a13, _mm256_mul_ps(v, w));
  }
  if (full < in) {  // zeros past `in` (masked loads): the reference's +0.0 products
    const __m256 u = _mm256_maskload_ps(x0 + full, mask);
    const __m256 v = TWO ? _mm256_maskload_ps(x1 + full, mask) : u;
    __m256 w = _mm256_maskload_ps(w0 + full, mask);
    a00 = _mm256_add_ps(a00, _mm256_mul_ps(u, w));
    if (TWO) a10 = _mm256_add_ps(a10, _mm256_mul_ps(v, w));
    w = _mm256_maskload_ps(w1 + full, mask);
    a01 = _mm256_add_ps(a01, _mm256_mul_ps(u, w));
    if (TWO) a11 = _mm256_add_ps(a11, _mm256_mul_ps(v, w));
    w = _mm256_maskload_ps(w2 + full, mask);
    a02 = _mm256_add_ps(a02, _mm256_mul_ps(u, w));
    if (TWO) a12 = _mm256_add_ps(a12, _mm256_mul_ps(v, w));
    w = _mm256_maskload_ps(w3 + full, mask);
    a03 = _mm256_add_ps(a03, _mm256_mul_ps(u, w));
    if (TWO) a13 = _mm256_add_ps(a13, _mm256_mul_ps(v, w));
  }
  return reduce8x8(a00, a01, a02, a03, a10, a11, a12, a13);
}

}  // namespace

void dense_f32_avx2(const float* x, const float* w, const float* bias, float* y, int64_t n,
                    int64_t in, int64_t out, int64_t b0, int64_t b1) {
  const int64_t ob = (out + 3) / 4, chunk = dense_f32_chunk_rows(in);
  const int64_t full = in / 8 * 8;
  const int rem = static_cast<int>(in - full);
  alignas(32) int32_t mbits[8];
  for (int j = 0; j < 8; ++j) mbits[j] = j < rem ? -1 : 0;
  const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(mbits));
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t r0 = b / ob * chunk, r1 = r0 + chunk < n ? r0 + chunk : n, o0 = b % ob * 4;
    const int64_t no = out - o0 < 4 ? out - o0 : 4;
    // Rows past `out` alias row o0 (computed, never stored) to keep the loop branch-free.
    const float* w0 = w + o0 * in;
    const float* w1 = no > 1 ? w0 + in : w0;
    const float* w2 = no > 2 ? w0 + 2 * in : w0;
    const float* w3 = no > 3 ? w0 + 3 * in : w0;
    alignas(16) float bb[4] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t k = 0; k < no; ++k) bb[k] = bias[o0 + k];
    const __m128 bv = _mm_load_ps(bb);
    const __m128i smask = _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(no)), _mm_setr_epi32(0, 1, 2, 3));
    for (int64_t r = r0; r < r1; r += 2) {
      const bool two = r + 1 < r1;
      const __m256 s = two ? block2x4<true>(x + r * in, x + (r + 1) * in, w0, w1, w2, w3, full, in, mask)
                           : block2x4<false>(x + r * in, nullptr, w0, w1, w2, w3, full, in, mask);
      const __m128 y0 = _mm_add_ps(_mm256_castps256_ps128(s), bv);  // y = s + bias[o]
      const __m128 y1 = _mm_add_ps(_mm256_extractf128_ps(s, 1), bv);
      if (no == 4) {
        _mm_storeu_ps(y + r * out + o0, y0);
        if (two) _mm_storeu_ps(y + (r + 1) * out + o0, y1);
      } else {
        _mm_maskstore_ps(y + r * out + o0, smask, y0);
        if (two) _mm_maskstore_ps(y + (r + 1) * out + o0, smask, y1);
      }
    }
  }
}

}  // namespace onebit::kernels
