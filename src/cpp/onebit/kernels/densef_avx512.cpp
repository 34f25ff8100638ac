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

// One vector of output lanes: zmm (16 outputs) or, for at most 8 outputs (grouped convolutions,
// 8 per group), ymm with AVX-512VL masks, so that no lane is idle.
struct Zmm {
  using reg = __m512;
  using mask = __mmask16;
  static constexpr int L = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg bcast(float v) { return _mm512_set1_ps(v); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg load_masked(mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_masked(float* p, mask m, reg v) { _mm512_mask_storeu_ps(p, m, v); }
};

struct Ymm {
  using reg = __m256;
  using mask = __mmask8;
  static constexpr int L = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg bcast(float v) { return _mm256_set1_ps(v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg load_masked(mask m, const float* p) { return _mm256_maskz_loadu_ps(m, p); }
  static void store_masked(float* p, mask m, reg v) { _mm256_mask_storeu_ps(p, m, v); }
};

// R rows x NV vectors of outputs [o0, o0 + NV * L).
template <class T, int R, int NV>
void rows_tile(const float* x, int64_t in, const float* wt, int64_t ld, const float* bias, float* y,
               int64_t out, int64_t o0) {
  using reg = typename T::reg;
  reg part[8][R][NV];
  for (int j = 0; j < 8; ++j) {
    reg a[R][NV];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) a[r][v] = T::zero();
    for (int64_t i = j; i < in; i += 8) {
      const float* wi = wt + i * ld + o0;
      reg w[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) w[v] = T::load(wi + T::L * v);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const reg xv = T::bcast(x[r * in + i]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) a[r][v] = T::add(a[r][v], T::mul(xv, w[v]));
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) part[j][r][v] = a[r][v];
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int64_t left = out - o0 - T::L * v;
    const auto m = static_cast<typename T::mask>(left >= T::L ? (1u << T::L) - 1 : (1u << left) - 1);
    const reg b = T::load_masked(m, bias + o0 + T::L * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const auto& p = part;
      const reg s = T::add(T::add(T::add(p[0][r][v], p[4][r][v]), T::add(p[2][r][v], p[6][r][v])),
                           T::add(T::add(p[1][r][v], p[5][r][v]), T::add(p[3][r][v], p[7][r][v])));
      T::store_masked(y + r * out + o0 + T::L * v, m, T::add(s, b));
    }
  }
}

using RowsTile = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*, int64_t, int64_t);

constexpr RowsTile kTiles8[8] = {rows_tile<Ymm, 1, 1>, rows_tile<Ymm, 2, 1>, rows_tile<Ymm, 3, 1>,
                                 rows_tile<Ymm, 4, 1>, rows_tile<Ymm, 5, 1>, rows_tile<Ymm, 6, 1>,
                                 rows_tile<Ymm, 7, 1>, rows_tile<Ymm, 8, 1>};

template <int R>
RowsTile rows_tile_for(int v) {
  return v == 4 ? rows_tile<Zmm, R, 4> : v == 3 ? rows_tile<Zmm, R, 3> : v == 2 ? rows_tile<Zmm, R, 2>
                                                                                 : rows_tile<Zmm, R, 1>;
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
