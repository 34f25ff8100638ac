// AVX-512 float32 dense layer over many rows: the 1x1 float convolution over N*H*W pixels and
// the float convolution over its patches (dense_f32 with n >= kDenseF32ManyRows).
//
// Outer products over W^T (DenseF32Prepared: (in, ld) floats): a tile of R rows x V vectors of 16
// outputs broadcasts x[r, i] and multiplies it with the 16 weights W^T[i, o..o+15]. The summation
// order is the contract (onebit/densef.h), kept lane by lane: partial sum j of an output takes
// the products of inputs i = j, j + 8, j + 16, ... in that order (product rounded, then added;
// never fused), so the tile runs the eight residues j one after the other, each from +0.0; the
// reference's products past `in` are +0.0 and adding +0.0 to a partial sum (never -0.0) changes
// nothing, so they are skipped. Then ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7)) + bias.
// The result equals densef_scalar.cpp bit for bit.
//
// Work item: a chunk of rows (its x stays in L2) x a block of 64 outputs (its W^T columns, in x
// 256 bytes, stay in L2); tiles of 4 rows x 4 vectors: 16 accumulators, per input 4 weight loads
// and 4 broadcasts for 16 multiplies and 16 adds; at most 8 outputs: tiles of 8 rows x one ymm.
#include <immintrin.h>

#include "onebit/kernels/densef_kernels.h"

namespace onebit::kernels {

namespace {

template <int R, int V>
void rows_tile(const float* x, int64_t in, const float* wt, int64_t ld, const float* bias, float* y,
               int64_t out, int64_t o0) {
  __m512 part[8][R][V];
  for (int j = 0; j < 8; ++j) {
    __m512 a[R][V];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) a[r][v] = _mm512_setzero_ps();
    for (int64_t i = j; i < in; i += 8) {
      const float* wi = wt + i * ld + o0;
      __m512 w[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) w[v] = _mm512_loadu_ps(wi + 16 * v);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512 xv = _mm512_set1_ps(x[r * in + i]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) a[r][v] = _mm512_add_ps(a[r][v], _mm512_mul_ps(xv, w[v]));
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) part[j][r][v] = a[r][v];
  }
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const int64_t left = out - o0 - 16 * v;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    const __m512 b = _mm512_maskz_loadu_ps(m, bias + o0 + 16 * v);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const auto& p = part;
      const __m512 s = _mm512_add_ps(
          _mm512_add_ps(_mm512_add_ps(p[0][r][v], p[4][r][v]), _mm512_add_ps(p[2][r][v], p[6][r][v])),
          _mm512_add_ps(_mm512_add_ps(p[1][r][v], p[5][r][v]), _mm512_add_ps(p[3][r][v], p[7][r][v])));
      _mm512_mask_storeu_ps(y + r * out + o0 + 16 * v, m, _mm512_add_ps(s, b));
    }
  }
}

// The same for at most 8 outputs (grouped convolutions, 8 outputs per group): one ymm vector per
// row, 8 rows per tile, so that no lane is idle (AVX-512VL masks for fewer outputs).
template <int R>
void rows_tile8(const float* x, int64_t in, const float* wt, int64_t ld, const float* bias, float* y,
                int64_t out, int64_t o0) {
  __m256 part[8][R];
  for (int j = 0; j < 8; ++j) {
    __m256 a[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a[r] = _mm256_setzero_ps();
    for (int64_t i = j; i < in; i += 8) {
      const __m256 w = _mm256_loadu_ps(wt + i * ld + o0);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) a[r] = _mm256_add_ps(a[r], _mm256_mul_ps(_mm256_set1_ps(x[r * in + i]), w));
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) part[j][r] = a[r];
  }
  const __mmask8 m = static_cast<__mmask8>((1u << (out - o0 < 8 ? out - o0 : 8)) - 1);
  const __m256 b = _mm256_maskz_loadu_ps(m, bias + o0);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const auto& p = part;
    const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(p[0][r], p[4][r]), _mm256_add_ps(p[2][r], p[6][r])),
                                   _mm256_add_ps(_mm256_add_ps(p[1][r], p[5][r]), _mm256_add_ps(p[3][r], p[7][r])));
    _mm256_mask_storeu_ps(y + r * out + o0, m, _mm256_add_ps(s, b));
  }
}

using RowsTile = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*, int64_t, int64_t);

constexpr RowsTile kTiles8[8] = {rows_tile8<1>, rows_tile8<2>, rows_tile8<3>, rows_tile8<4>,
                                 rows_tile8<5>, rows_tile8<6>, rows_tile8<7>, rows_tile8<8>};

template <int R>
RowsTile rows_tile_for(int v) {
  return v == 4 ? rows_tile<R, 4> : v == 3 ? rows_tile<R, 3> : v == 2 ? rows_tile<R, 2> : rows_tile<R, 1>;
}

RowsTile pick(int r, int v) {
  return r == 4 ? rows_tile_for<4>(v) : r == 3 ? rows_tile_for<3>(v) : r == 2 ? rows_tile_for<2>(v)
                                                                          : rows_tile_for<1>(v);
}

}  // namespace

void dense_f32_rows_avx512(const float* x, const float* wt, int64_t ld, const float* bias, float* y,
                           int64_t n, int64_t in, int64_t out, int64_t b0, int64_t b1) {
  const int64_t ob = (out + 63) / 64, chunk = dense_f32_rows_chunk(in);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t r0 = b / ob * chunk, r1 = r0 + chunk < n ? r0 + chunk : n, o0 = b % ob * 64;
    const int v = static_cast<int>((out - o0 < 64 ? out - o0 + 15 : 64) / 16);
    if (out <= 8) {
      for (int64_t r = r0; r < r1; r += 8)
        kTiles8[(r1 - r < 8 ? r1 - r : 8) - 1](x + r * in, in, wt, ld, bias, y + r * out, out, o0);
      continue;
    }
    for (int64_t r = r0; r < r1; r += 4) {
      const int rr = static_cast<int>(r1 - r < 4 ? r1 - r : 4);
      pick(rr, v)(x + r * in, in, wt, ld, bias, y + r * out, out, o0);
    }
  }
}

}  // namespace onebit::kernels
