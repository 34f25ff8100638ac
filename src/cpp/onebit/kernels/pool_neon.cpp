// NEON pooling kernels, vectorized along channels (NHWC keeps a pixel's channels contiguous).
// Each lane performs exactly the scalar reference's operations in the same (window) order, so
// the results equal pool_scalar.cpp bit for bit. Packed-bit max (AND), int8 max and the int8
// sums of average pooling are integer code shared by aarch64 and 32-bit ARM; the int8 rounding
// (avg_round_int8) runs per channel on the vector sums. float32 kernels are aarch64 only:
// 32-bit ARM's NEON flushes denormals to zero, so there they run the scalar reference.
#include <arm_neon.h>

#include <limits>

#include "onebit/kernels/pool_kernels.h"
#include "onebit/kernels/scratch.h"

namespace onebit::kernels {

namespace {

template <typename T>
inline const T* tap(const T* x, const PoolGeom& g, int64_t n, int64_t oy, int64_t ox, int i, int j) {
  return x + ((n * g.h + oy * g.sh - g.ph + i) * g.w + ox * g.sw - g.pw + j) * g.c;
}

// Walks every output pixel of rows [r0, r1): fn(out_offset, n, oy, ox, window).
template <typename Fn>
inline void each_output(const PoolGeom& g, int64_t r0, int64_t r1, Fn fn) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.oh, oy = r % g.oh;
    for (int64_t ox = 0; ox < g.ow; ++ox) fn((r * g.ow + ox) * g.c, n, oy, ox, pool_window(g, oy, ox));
  }
}

// The channels [k, c) of one output pixel, one at a time: the scalar rule acc = acc > t ? acc : t.
template <typename T>
inline void max_tail(const T* x, T* y, const PoolGeom& g, int64_t o, int64_t n, int64_t oy, int64_t ox,
                     const Window& win, int64_t k, T init) {
  for (; k < g.c; ++k) {
    T acc = init;
    for (int i = win.i0; i < win.i1; ++i)
      for (int j = win.j0; j < win.j1; ++j) {
        const T t = tap(x, g, n, oy, ox, i, j)[k];
        acc = acc > t ? acc : t;
      }
    y[o + k] = acc;
  }
}

}  // namespace

void maxpool_bits_neon(const uint64_t* x, uint64_t* y, const PoolGeom& g, int64_t r0, int64_t r1) {
  each_output(g, r0, r1, [&](int64_t o, int64_t n, int64_t oy, int64_t ox, const Window& win) {
    int64_t k = 0;
    for (; k + 2 <= g.c; k += 2) {
      uint64x2_t acc = vdupq_n_u64(~uint64_t{0});
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) acc = vandq_u64(acc, vld1q_u64(tap(x, g, n, oy, ox, i, j) + k));
      vst1q_u64(y + o + k, acc);
    }
    for (; k < g.c; ++k) {
      uint64_t acc = ~uint64_t{0};
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) acc &= tap(x, g, n, oy, ox, i, j)[k];
      y[o + k] = acc;
    }
  });
}

void maxpool_int8_neon(const int8_t* x, int8_t* y, const PoolGeom& g, int64_t r0, int64_t r1) {
  each_output(g, r0, r1, [&](int64_t o, int64_t n, int64_t oy, int64_t ox, const Window& win) {
    int64_t k = 0;
    for (; k + 16 <= g.c; k += 16) {
      int8x16_t acc = vdupq_n_s8(-128);
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) acc = vmaxq_s8(acc, vld1q_s8(tap(x, g, n, oy, ox, i, j) + k));
      vst1q_s8(y + o + k, acc);
    }
    max_tail<int8_t>(x, y, g, o, n, oy, ox, win, k, -128);
  });
}

void avgpool_int8_neon(const int8_t* x, int8_t* y, const PoolGeom& g, bool cip, int64_t r0, int64_t r1) {
  Scratch<int32_t> acc;
  acc.get(static_cast<size_t>(g.c) + 8);
  each_output(g, r0, r1, [&](int64_t o, int64_t n, int64_t oy, int64_t ox, const Window& win) {
    int64_t k = 0;
    for (; k + 8 <= g.c; k += 8) {  // int32 sums: |s| <= 128 * kh * kw
      int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) {
          const int16x8_t v = vmovl_s8(vld1_s8(tap(x, g, n, oy, ox, i, j) + k));
          s0 = vaddw_s16(s0, vget_low_s16(v));
          s1 = vaddw_s16(s1, vget_high_s16(v));
        }
      vst1q_s32(acc.data() + k, s0);
      vst1q_s32(acc.data() + k + 4, s1);
    }
    for (; k < g.c; ++k) {
      int32_t s = 0;
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) s += tap(x, g, n, oy, ox, i, j)[k];
      acc[static_cast<size_t>(k)] = s;
    }
    const int64_t d = pool_divisor(g, oy, ox, win, cip);
    for (k = 0; k < g.c; ++k) y[o + k] = avg_round_int8(acc[static_cast<size_t>(k)], d);
  });
}

void gap_int8_neon(const int8_t* x, int8_t* y, int64_t hw, int64_t c, int64_t n0, int64_t n1) {
  // int32 sums: the dispatcher limits hw to 2^23, so |s| <= 2^30.
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* xn = x + n * hw * c;
    int64_t k = 0;
    for (; k + 8 <= c; k += 8) {
      int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
      for (int64_t p = 0; p < hw; ++p) {
        const int16x8_t v = vmovl_s8(vld1_s8(xn + p * c + k));
        s0 = vaddw_s16(s0, vget_low_s16(v));
        s1 = vaddw_s16(s1, vget_high_s16(v));
      }
      int32_t s[8];
      vst1q_s32(s, s0);
      vst1q_s32(s + 4, s1);
      for (int l = 0; l < 8; ++l) y[n * c + k + l] = avg_round_int8(s[l], hw);
    }
    for (; k < c; ++k) {
      int64_t s = 0;
      for (int64_t p = 0; p < hw; ++p) s += xn[p * c + k];
      y[n * c + k] = avg_round_int8(s, hw);
    }
  }
}

#if defined(__aarch64__)

void maxpool_f32_neon(const float* x, float* y, const PoolGeom& g, int64_t r0, int64_t r1) {
  const float ninf = -std::numeric_limits<float>::infinity();
  each_output(g, r0, r1, [&](int64_t o, int64_t n, int64_t oy, int64_t ox, const Window& win) {
    int64_t k = 0;
    for (; k + 4 <= g.c; k += 4) {
      float32x4_t acc = vdupq_n_f32(ninf);
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) {
          const float32x4_t t = vld1q_f32(tap(x, g, n, oy, ox, i, j) + k);
          acc = vbslq_f32(vcgtq_f32(acc, t), acc, t);  // acc > t ? acc : t (the scalar rule)
        }
      vst1q_f32(y + o + k, acc);
    }
    max_tail<float>(x, y, g, o, n, oy, ox, win, k, ninf);
  });
}

void avgpool_f32_neon(const float* x, float* y, const PoolGeom& g, bool cip, int64_t r0, int64_t r1) {
  each_output(g, r0, r1, [&](int64_t o, int64_t n, int64_t oy, int64_t ox, const Window& win) {
    const float d = static_cast<float>(pool_divisor(g, oy, ox, win, cip));
    const float32x4_t vd = vdupq_n_f32(d);
    int64_t k = 0;
    for (; k + 4 <= g.c; k += 4) {
      float32x4_t acc = vdupq_n_f32(0.0f);
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) acc = vaddq_f32(acc, vld1q_f32(tap(x, g, n, oy, ox, i, j) + k));
      vst1q_f32(y + o + k, vdivq_f32(acc, vd));
    }
    for (; k < g.c; ++k) {
      float acc = 0.0f;
      for (int i = win.i0; i < win.i1; ++i)
        for (int j = win.j0; j < win.j1; ++j) acc = acc + tap(x, g, n, oy, ox, i, j)[k];
      y[o + k] = acc / d;
    }
  });
}

void gap_int8_f32_neon(const int8_t* x, float* y, int64_t hw, int64_t c, float m, int64_t n0, int64_t n1) {
  const float32x4_t vm = vdupq_n_f32(m);
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* xn = x + n * hw * c;
    int64_t k = 0;
    for (; k + 8 <= c; k += 8) {
      int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
      for (int64_t p = 0; p < hw; ++p) {
        const int16x8_t v = vmovl_s8(vld1_s8(xn + p * c + k));
        s0 = vaddw_s16(s0, vget_low_s16(v));
        s1 = vaddw_s16(s1, vget_high_s16(v));
      }
      // |s| <= 2^30: the int32 -> float conversion rounds like the scalar int64 -> float one.
      vst1q_f32(y + n * c + k, vmulq_f32(vcvtq_f32_s32(s0), vm));
      vst1q_f32(y + n * c + k + 4, vmulq_f32(vcvtq_f32_s32(s1), vm));
    }
    for (; k < c; ++k) {
      int64_t s = 0;
      for (int64_t p = 0; p < hw; ++p) s += xn[p * c + k];
      y[n * c + k] = static_cast<float>(s) * m;
    }
  }
}

void gap_f32_neon(const float* x, float* y, int64_t hw, int64_t c, int64_t n0, int64_t n1) {
  const float d = static_cast<float>(hw);
  const float32x4_t vd = vdupq_n_f32(d);
  for (int64_t n = n0; n < n1; ++n) {
    const float* xn = x + n * hw * c;
    int64_t k = 0;
    for (; k + 4 <= c; k += 4) {
      float32x4_t acc = vdupq_n_f32(0.0f);
      for (int64_t p = 0; p < hw; ++p) acc = vaddq_f32(acc, vld1q_f32(xn + p * c + k));
      vst1q_f32(y + n * c + k, vdivq_f32(acc, vd));
    }
    for (; k < c; ++k) {
      float acc = 0.0f;
      for (int64_t p = 0; p < hw; ++p) acc = acc + xn[p * c + k];
      y[n * c + k] = acc / d;
    }
  }
}

#endif  // __aarch64__

}  // namespace onebit::kernels
