// Scalar reference pooling kernels: the executable spec the SIMD variants must equal bit for bit.
#include <cstring>
#include <limits>
#include <vector>

#include "onebit/kernels/pool_kernels.h"

namespace onebit::kernels {

namespace {

// One max-pool walk: every output starts at `init` and folds its in-bounds taps with `fold`.
template <typename T, typename Fold>
void maxpool_rows(const T* x, T* y, const PoolGeom& g, int64_t r0, int64_t r1, T init, Fold fold) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.oh, oy = r % g.oh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const Window win = pool_window(g, oy, ox);
      T* out = y + (r * g.ow + ox) * g.c;
      for (int64_t k = 0; k < g.c; ++k) out[k] = init;
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) {
          const T* in = x + ((n * g.h + oy * g.sh - g.ph + i) * g.w + ox * g.sw - g.pw + j) * g.c;
          for (int64_t k = 0; k < g.c; ++k) out[k] = fold(out[k], in[k]);
        }
    }
  }
}

}  // namespace

void maxpool_bits_scalar(const uint64_t* x, uint64_t* y, const PoolGeom& g, int64_t r0,
                         int64_t r1) {
  // max(+-1) = -1 only if all taps are -1: AND of the bits (bit 1 = -1).
  maxpool_rows<uint64_t>(x, y, g, r0, r1, ~uint64_t{0}, [](uint64_t a, uint64_t b) { return a & b; });
}

void maxpool_int8_scalar(const int8_t* x, int8_t* y, const PoolGeom& g, int64_t r0, int64_t r1) {
  maxpool_rows<int8_t>(x, y, g, r0, r1, int8_t{-128}, [](int8_t a, int8_t b) { return std::max(a, b); });
}

void maxpool_f32_scalar(const float* x, float* y, const PoolGeom& g, int64_t r0, int64_t r1) {
  maxpool_rows<float>(x, y, g, r0, r1, -std::numeric_limits<float>::infinity(),
                      [](float a, float b) { return a > b ? a : b; });  // the vmaxps rule
}

void avgpool_int8_scalar(const int8_t* x, int8_t* y, const PoolGeom& g, bool cip, int64_t r0,
                         int64_t r1) {
  std::vector<int32_t> acc(g.c);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.oh, oy = r % g.oh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const Window win = pool_window(g, oy, ox);
      std::fill(acc.begin(), acc.end(), 0);
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) {
          const int8_t* in =
              x + ((n * g.h + oy * g.sh - g.ph + i) * g.w + ox * g.sw - g.pw + j) * g.c;
          for (int64_t k = 0; k < g.c; ++k) acc[k] += in[k];
        }
      const int64_t d = pool_divisor(g, oy, ox, win, cip);
      int8_t* out = y + (r * g.ow + ox) * g.c;
      for (int64_t k = 0; k < g.c; ++k) out[k] = avg_round_int8(acc[k], d);
    }
  }
}

void avgpool_f32_scalar(const float* x, float* y, const PoolGeom& g, bool cip, int64_t r0,
                        int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.oh, oy = r % g.oh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const Window win = pool_window(g, oy, ox);
      float* out = y + (r * g.ow + ox) * g.c;
      for (int64_t k = 0; k < g.c; ++k) out[k] = 0.0f;
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) {
          const float* in =
              x + ((n * g.h + oy * g.sh - g.ph + i) * g.w + ox * g.sw - g.pw + j) * g.c;
          for (int64_t k = 0; k < g.c; ++k) out[k] = out[k] + in[k];
        }
      const float d = static_cast<float>(pool_divisor(g, oy, ox, win, cip));
      for (int64_t k = 0; k < g.c; ++k) out[k] = out[k] / d;
    }
  }
}

void gap_int8_scalar(const int8_t* x, int8_t* y, int64_t hw, int64_t c, int64_t n0, int64_t n1) {
  std::vector<int64_t> acc(c);
  for (int64_t n = n0; n < n1; ++n) {
    std::fill(acc.begin(), acc.end(), 0);
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t k = 0; k < c; ++k) acc[k] += x[(n * hw + p) * c + k];
    for (int64_t k = 0; k < c; ++k) y[n * c + k] = avg_round_int8(acc[k], hw);
  }
}

void gap_int8_f32_scalar(const int8_t* x, float* y, int64_t hw, int64_t c, float m, int64_t n0,
                         int64_t n1) {
  std::vector<int64_t> acc(c);
  for (int64_t n = n0; n < n1; ++n) {
    std::fill(acc.begin(), acc.end(), 0);
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t k = 0; k < c; ++k) acc[k] += x[(n * hw + p) * c + k];
    for (int64_t k = 0; k < c; ++k) y[n * c + k] = static_cast<float>(acc[k]) * m;
  }
}

void gap_f32_scalar(const float* x, float* y, int64_t hw, int64_t c, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    float* out = y + n * c;
    for (int64_t k = 0; k < c; ++k) out[k] = 0.0f;
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t k = 0; k < c; ++k) out[k] = out[k] + x[(n * hw + p) * c + k];
    const float d = static_cast<float>(hw);
    for (int64_t k = 0; k < c; ++k) out[k] = out[k] / d;
  }
}

}  // namespace onebit::kernels
