// Per-ISA pooling kernels (declarations). Each processes output rows [r0, r1) of the N*OH rows
// (or batch items [n0, n1) for global pooling); the dispatcher in pool.cpp picks the ISA and
// splits the rows over threads.
#pragma once
#include <algorithm>
#include <cstdint>

#include "onebit/pool.h"

namespace onebit::kernels {

// Helpers have internal linkage: the header is compiled with different ISA flags in different
// translation units, and one shared inline definition could carry AVX2 code into the scalar path.
namespace {

// floor(a / b) for b > 0 (C++ division truncates towards zero).
inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// round(s / d), halves up, clamped to the symmetric int8 grid: floor((2s + d) / 2d).
inline int8_t avg_round_int8(int64_t s, int64_t d) {
  int64_t q = floor_div(2 * s + d, 2 * d);
  return static_cast<int8_t>(std::min<int64_t>(127, std::max<int64_t>(-127, q)));
}

// Clipped window bounds of output (oy, ox): taps i in [i0, i1), j in [j0, j1).
struct Window {
  int i0, i1, j0, j1;
};
inline Window pool_window(const PoolGeom& g, int64_t oy, int64_t ox) {
  int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
  Window win;
  win.i0 = static_cast<int>(std::max<int64_t>(0, -y0));
  win.i1 = static_cast<int>(std::min<int64_t>(g.kh, g.h - y0));
  win.j0 = static_cast<int>(std::max<int64_t>(0, -x0));
  win.j1 = static_cast<int>(std::min<int64_t>(g.kw, g.w - x0));
  return win;
}

// Divisor of average-pooling window (oy, ox) (see PoolGeom): the in-bounds taps, or with
// count_include_pad the window clipped to the padded input (kh*kw unless ceil_mode cut it).
inline int32_t pool_divisor(const PoolGeom& g, int64_t oy, int64_t ox, const Window& win,
                            bool cip) {
  if (!cip) return (win.i1 - win.i0) * (win.j1 - win.j0);
  const int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
  return static_cast<int32_t>(std::min<int64_t>(g.kh, g.h + g.ph - y0) *
                              std::min<int64_t>(g.kw, g.w + g.pw - x0));
}

}  // namespace

#define ONEBIT_POOL_DECLARE(isa)                                                                \
  void maxpool_bits_##isa(const uint64_t* x, uint64_t* y, const PoolGeom& g, int64_t r0,        \
                          int64_t r1);                                                          \
  void maxpool_int8_##isa(const int8_t* x, int8_t* y, const PoolGeom& g, int64_t r0,            \
                          int64_t r1);                                                          \
  void maxpool_f32_##isa(const float* x, float* y, const PoolGeom& g, int64_t r0, int64_t r1); \
  void avgpool_int8_##isa(const int8_t* x, int8_t* y, const PoolGeom& g, bool cip, int64_t r0,  \
                          int64_t r1);                                                          \
  void avgpool_f32_##isa(const float* x, float* y, const PoolGeom& g, bool cip, int64_t r0,     \
                         int64_t r1);                                                           \
  void gap_int8_##isa(const int8_t* x, int8_t* y, int64_t hw, int64_t c, int64_t n0,            \
                      int64_t n1);                                                              \
  void gap_int8_f32_##isa(const int8_t* x, float* y, int64_t hw, int64_t c, float m,            \
                          int64_t n0, int64_t n1);                                              \
  void gap_f32_##isa(const float* x, float* y, int64_t hw, int64_t c, int64_t n0, int64_t n1);

ONEBIT_POOL_DECLARE(scalar)
#if defined(ONEBIT_HAVE_X86)
ONEBIT_POOL_DECLARE(avx2)
#endif
#if defined(ONEBIT_HAVE_NEON)
void maxpool_bits_neon(const uint64_t* x, uint64_t* y, const PoolGeom& g, int64_t r0, int64_t r1);
void maxpool_int8_neon(const int8_t* x, int8_t* y, const PoolGeom& g, int64_t r0, int64_t r1);
void avgpool_int8_neon(const int8_t* x, int8_t* y, const PoolGeom& g, bool cip, int64_t r0, int64_t r1);
void gap_int8_neon(const int8_t* x, int8_t* y, int64_t hw, int64_t c, int64_t n0, int64_t n1);
#if defined(__aarch64__)  // float NEON kernels: aarch64 only (32-bit NEON flushes denormals)
void maxpool_f32_neon(const float* x, float* y, const PoolGeom& g, int64_t r0, int64_t r1);
void avgpool_f32_neon(const float* x, float* y, const PoolGeom& g, bool cip, int64_t r0, int64_t r1);
void gap_int8_f32_neon(const int8_t* x, float* y, int64_t hw, int64_t c, float m, int64_t n0, int64_t n1);
void gap_f32_neon(const float* x, float* y, int64_t hw, int64_t c, int64_t n0, int64_t n1);
#endif
#endif
#undef ONEBIT_POOL_DECLARE

}  // namespace onebit::kernels
