// AVX2 pooling kernels: vectorized along channels (NHWC keeps a pixel's channels contiguous).
// Each lane performs exactly the scalar reference's operations in the same order, so results
// equal pool_scalar.cpp bit for bit (floats included).
#include <immintrin.h>

#include <cstring>
#include <limits>

#include "onebit/kernels/pool_kernels.h"
#include "onebit/kernels/scratch.h"

namespace onebit::kernels {

namespace {

inline const void* tap_ptr(const void* base, size_t elem, const PoolGeom& g, int64_t n, int64_t oy,
                           int64_t ox, int i, int j) {
  return static_cast<const char*>(base) +
         ((n * g.h + oy * g.sh - g.ph + i) * g.w + ox * g.sw - g.pw + j) * g.c * elem;
}

// floor((2s + d) / 2d) clamped to [-127, 127] for 8 int32 sums. A float32 estimate of the
// quotient is within 1 of the truth when |2s + d| < 2^24 (the caller guarantees it), and one
// remainder test in each direction makes it exact.
inline __m256i avg_round_vec(__m256i s, __m256i d, __m256i dd, __m256 rcp) {
  const __m256i nn = _mm256_add_epi32(_mm256_add_epi32(s, s), d);
  __m256i q = _mm256_cvttps_epi32(_mm256_floor_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(nn), rcp)));
  __m256i rem = _mm256_sub_epi32(nn, _mm256_mullo_epi32(q, dd));
  q = _mm256_add_epi32(q, _mm256_cmpgt_epi32(_mm256_setzero_si256(), rem));  // rem < 0: q - 1
  rem = _mm256_sub_epi32(nn, _mm256_mullo_epi32(q, dd));
  q = _mm256_sub_epi32(q, _mm256_cmpgt_epi32(rem, _mm256_sub_epi32(dd, _mm256_set1_epi32(1))));
  q = _mm256_min_epi32(q, _mm256_set1_epi32(127));
  return _mm256_max_epi32(q, _mm256_set1_epi32(-127));
}

// Four int32x8 vectors in [-127, 127] -> 32 int8 in lane order.
inline __m256i pack_4x_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Adds the 32 int8 at `in`, widened to int32, to the channel accumulators a0..a3 (8 each).
inline void add_widened(const int8_t* in, __m256i& a0, __m256i& a1, __m256i& a2, __m256i& a3) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16));
  a0 = _mm256_add_epi32(a0, _mm256_cvtepi8_epi32(lo));
  a1 = _mm256_add_epi32(a1, _mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
  a2 = _mm256_add_epi32(a2, _mm256_cvtepi8_epi32(hi));
  a3 = _mm256_add_epi32(a3, _mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

}  // namespace

namespace {

// Max pooling over one element type: V holds L elements; combine(acc, t) is the reference's
// per-element rule (AND for bits, max for int8, acc > t ? acc : t for float = vmaxps(acc, t)).
// Integer element types: 32 bytes of T per __m256i, unaligned loads and stores.
template <class Elem>
struct IntLanes {
  using T = Elem;
  static constexpr int L = 32 / sizeof(T);
  static __m256i load(const T* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(T* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
};
struct MaxBits : IntLanes<uint64_t> {
  static __m256i init() { return _mm256_set1_epi64x(-1); }
  static __m256i combine(__m256i a, __m256i t) { return _mm256_and_si256(a, t); }
  static T init1() { return ~uint64_t{0}; }
  static T combine1(T a, T t) { return a & t; }
};
struct MaxInt8 : IntLanes<int8_t> {
  static __m256i init() { return _mm256_set1_epi8(-128); }
  static __m256i combine(__m256i a, __m256i t) { return _mm256_max_epi8(a, t); }
  static T init1() { return -128; }
  static T combine1(T a, T t) { return std::max(a, t); }
};
struct MaxF32 {
  using T = float;
  static constexpr int L = 8;
  static __m256 init() { return _mm256_set1_ps(-std::numeric_limits<float>::infinity()); }
  static __m256 load(const T* p) { return _mm256_loadu_ps(p); }
  static __m256 combine(__m256 a, __m256 t) { return _mm256_max_ps(a, t); }  // a > t ? a : t
  static void store(T* p, __m256 v) { _mm256_storeu_ps(p, v); }
  static T init1() { return -std::numeric_limits<float>::infinity(); }
  static T combine1(T a, T t) { return a > t ? a : t; }
};

// Output rows [r0, r1): per output pixel, the clipped window's taps in (i, j) row-major order
// (the reference's order), 4 vectors of channels per pass so each tap row pointer is computed
// once per pass and 4 independent max chains overlap.
template <class Op>
void maxpool_rows(const typename Op::T* x, typename Op::T* y, const PoolGeom& g, int64_t r0,
                  int64_t r1) {
  using T = typename Op::T;
  constexpr int L = Op::L;
  const int64_t c = g.c, rs = g.w * g.c;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.oh, oy = r % g.oh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const Window win = pool_window(g, oy, ox);
      const T* base = x + ((n * g.h + oy * g.sh - g.ph + win.i0) * g.w + ox * g.sw - g.pw + win.j0) * c;
      const int nh = win.i1 - win.i0, nw = win.j1 - win.j0;
      T* out = y + (r * g.ow + ox) * c;
      int64_t k = 0;
      for (; k + 4 * L <= c; k += 4 * L) {
        auto a0 = Op::init(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < nh; ++i) {
          const T* p = base + i * rs + k;
          for (int j = 0; j < nw; ++j, p += c) {
            a0 = Op::combine(a0, Op::load(p));
            a1 = Op::combine(a1, Op::load(p + L));
            a2 = Op::combine(a2, Op::load(p + 2 * L));
            a3 = Op::combine(a3, Op::load(p + 3 * L));
          }
        }
        Op::store(out + k, a0);
        Op::store(out + k + L, a1);
        Op::store(out + k + 2 * L, a2);
        Op::store(out + k + 3 * L, a3);
      }
      for (; k + L <= c; k += L) {
        auto a = Op::init();
        for (int i = 0; i < nh; ++i) {
          const T* p = base + i * rs + k;
          for (int j = 0; j < nw; ++j, p += c) a = Op::combine(a, Op::load(p));
        }
        Op::store(out + k, a);
      }
      for (; k < c; ++k) {
        T a = Op::init1();
        for (int i = 0; i < nh; ++i)
          for (int j = 0; j < nw; ++j) a = Op::combine1(a, base[i * rs + j * c + k]);
        out[k] = a;
      }
    }
  }
}

}  // namespace

void maxpool_bits_avx2(const uint64_t* x, uint64_t* y, const PoolGeom& g, int64_t r0,
                       int64_t r1) {
  maxpool_rows<MaxBits>(x, y, g, r0, r1);
}

void maxpool_int8_avx2(const int8_t* x, int8_t* y, const PoolGeom& g, int64_t r0, int64_t r1) {
  maxpool_rows<MaxInt8>(x, y, g, r0, r1);
}

void maxpool_f32_avx2(const float* x, float* y, const PoolGeom& g, int64_t r0, int64_t r1) {
  maxpool_rows<MaxF32>(x, y, g, r0, r1);
}

void avgpool_int8_avx2(const int8_t* x, int8_t* y, const PoolGeom& g, bool cip, int64_t r0,
                       int64_t r1) {
  // The float estimate in avg_round_vec needs |2s + d| <= 257 d < 2^24.
  if (int64_t{g.kh} * g.kw >= 65000) return avgpool_int8_scalar(x, y, g, cip, r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.oh, oy = r % g.oh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const Window win = pool_window(g, oy, ox);
      const int32_t d = pool_divisor(g, oy, ox, win, cip);
      const __m256i dv = _mm256_set1_epi32(d), ddv = _mm256_set1_epi32(2 * d);
      const __m256 rcp = _mm256_set1_ps(1.0f / static_cast<float>(2 * d));
      int8_t* out = y + (r * g.ow + ox) * g.c;
      int64_t k = 0;
      for (; k + 32 <= g.c; k += 32) {
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = win.i0; i < win.i1; ++i)
          for (int j = win.j0; j < win.j1; ++j) {
            auto in = static_cast<const int8_t*>(tap_ptr(x, 1, g, n, oy, ox, i, j)) + k;
            add_widened(in, a0, a1, a2, a3);
          }
        const __m256i q = pack_4x_i32_to_i8(avg_round_vec(a0, dv, ddv, rcp),
                                            avg_round_vec(a1, dv, ddv, rcp),
                                            avg_round_vec(a2, dv, ddv, rcp),
                                            avg_round_vec(a3, dv, ddv, rcp));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), q);
      }
      for (; k < g.c; ++k) {
        int32_t acc = 0;
        for (int i = win.i0; i < win.i1; ++i)
          for (int j = win.j0; j < win.j1; ++j)
            acc += static_cast<const int8_t*>(tap_ptr(x, 1, g, n, oy, ox, i, j))[k];
        out[k] = avg_round_int8(acc, d);
      }
    }
  }
}

void avgpool_f32_avx2(const float* x, float* y, const PoolGeom& g, bool cip, int64_t r0,
                      int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.oh, oy = r % g.oh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const Window win = pool_window(g, oy, ox);
      const float d = static_cast<float>(pool_divisor(g, oy, ox, win, cip));
      const __m256 dv = _mm256_set1_ps(d);
      float* out = y + (r * g.ow + ox) * g.c;
      int64_t k = 0;
      for (; k + 8 <= g.c; k += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int i = win.i0; i < win.i1; ++i)
          for (int j = win.j0; j < win.j1; ++j)
            acc = _mm256_add_ps(
                acc, _mm256_loadu_ps(static_cast<const float*>(tap_ptr(x, 4, g, n, oy, ox, i, j)) + k));
        _mm256_storeu_ps(out + k, _mm256_div_ps(acc, dv));
      }
      for (; k < g.c; ++k) {
        float acc = 0.0f;
        for (int i = win.i0; i < win.i1; ++i)
          for (int j = win.j0; j < win.j1; ++j)
            acc = acc + static_cast<const float*>(tap_ptr(x, 4, g, n, oy, ox, i, j))[k];
        out[k] = acc / d;
      }
    }
  }
}

namespace {
// Exact int32 channel sums over hw pixels (|sum| <= 128 * hw < 2^31, checked by the caller).
void gap_sums(const int8_t* x, int32_t* acc, int64_t hw, int64_t c) {
  int64_t k = 0;
  for (; k + 32 <= c; k += 32) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t p = 0; p < hw; ++p) {
      const int8_t* in = x + p * c + k;
      add_widened(in, a0, a1, a2, a3);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + k), a0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + k + 8), a1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + k + 16), a2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + k + 24), a3);
  }
  for (; k < c; ++k) {
    int32_t s = 0;
    for (int64_t p = 0; p < hw; ++p) s += x[p * c + k];
    acc[k] = s;
  }
}
}  // namespace

void gap_int8_avx2(const int8_t* x, int8_t* y, int64_t hw, int64_t c, int64_t n0, int64_t n1) {
  Scratch<int32_t> acc;
  acc.assign(static_cast<size_t>(c), 0);
  for (int64_t n = n0; n < n1; ++n) {
    gap_sums(x + n * hw * c, acc.data(), hw, c);
    for (int64_t k = 0; k < c; ++k) y[n * c + k] = avg_round_int8(acc[k], hw);
  }
}

void gap_int8_f32_avx2(const int8_t* x, float* y, int64_t hw, int64_t c, float m, int64_t n0,
                       int64_t n1) {
  Scratch<int32_t> acc;
  acc.assign(static_cast<size_t>(c), 0);
  const __m256 mv = _mm256_set1_ps(m);
  for (int64_t n = n0; n < n1; ++n) {
    gap_sums(x + n * hw * c, acc.data(), hw, c);
    float* out = y + n * c;
    int64_t k = 0;
    for (; k + 8 <= c; k += 8)
      _mm256_storeu_ps(out + k,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256(
                                         reinterpret_cast<const __m256i*>(acc.data() + k))),
                                     mv));
    for (; k < c; ++k) out[k] = static_cast<float>(acc[k]) * m;
  }
}

void gap_f32_avx2(const float* x, float* y, int64_t hw, int64_t c, int64_t n0, int64_t n1) {
  const float d = static_cast<float>(hw);
  const __m256 dv = _mm256_set1_ps(d);
  for (int64_t n = n0; n < n1; ++n) {
    const float* in = x + n * hw * c;
    float* out = y + n * c;
    int64_t k = 0;
    for (; k + 32 <= c; k += 32) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t p = 0; p < hw; ++p) {
        const float* q = in + p * c + k;
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(q));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(q + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(q + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(q + 24));
      }
      _mm256_storeu_ps(out + k, _mm256_div_ps(a0, dv));
      _mm256_storeu_ps(out + k + 8, _mm256_div_ps(a1, dv));
      _mm256_storeu_ps(out + k + 16, _mm256_div_ps(a2, dv));
      _mm256_storeu_ps(out + k + 24, _mm256_div_ps(a3, dv));
    }
    for (; k + 8 <= c; k += 8) {
      __m256 a0 = _mm256_setzero_ps();
      for (int64_t p = 0; p < hw; ++p) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(in + p * c + k));
      _mm256_storeu_ps(out + k, _mm256_div_ps(a0, dv));
    }
    for (; k < c; ++k) {
      float s = 0.0f;
      for (int64_t p = 0; p < hw; ++p) s = s + in[p * c + k];
      out[k] = s / d;
    }
  }
}

}  // namespace onebit::kernels
