// Fused output stages, AVX2 form (included by the AVX2 and AVX-512 kernel TUs; internal
// linkage so each TU keeps its own copy compiled with its own flags). Must equal
// output_stage.h bit for bit: the same integer math, float multiply then add (no FMA).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_stage.h"
#include "onebit/kernels/scratch.h"

namespace onebit::kernels {
namespace {

// The first min(n, 16) bytes of q to d.
inline void store_bytes16(int8_t* d, __m128i q, int64_t n) {
  if (n >= 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), q);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), q);
    std::memcpy(d, tmp, static_cast<size_t>(n));
  }
}

// Per-call parameters widened / padded for vector loads (channel count rounded up to 64).
struct StagePrep {
  // bits: d (+-1, 1 for padding channels) and u = clamp(d*t, -K, K+1) - 1: bit = NOT(d*y > u)
  // (see write_stage_avx2); int8: M, B + 2^(S-1)
  Scratch<int32_t> d, u, m, b;
  bool int8_fast = false;               // |y*M + B + 2^(S-1)| < 2^31 for every |y| <= K
  // Else, int8: per channel a window [lo, hi] of y outside which the output saturates (see
  // int8_window); y clamped to it keeps y*M + B + 2^(S-1) inside int32, so the int32 formula on
  // the clamped y equals the int64 one on y.
  bool int8_win = false;
  Scratch<int32_t> lo, hi;
  bool int8_f64 = false;  // else: |y*M| + |B + 2^(S-1)| < 2^53, exact in float64 lanes
  Scratch<double> md, bd;            // int8 (float64 path): M and B + 2^(S-1) as doubles
  Scratch<float> scale, bias;
};

// The int8 stage q(y) = clamp(floor((y*M + B + 2^(S-1)) / 2^S), -127, 127) is monotone in y.
// Finds lo <= hi within [-K, K] such that q(y) = q(lo) for every y < lo, q(y) = q(hi) for every
// y > hi (both saturated, -127 or 127), and t(y) = y*M + B + 2^(S-1) fits int32 on [lo, hi]
// (t is monotone, so checking both ends suffices): then q(y) = q32(clamp(y, lo, hi)), the int32
// formula. The ends come from float64 estimates, then are checked exactly in int64; false when a
// check fails (the caller keeps its other paths).
inline bool int8_window(int32_t m, int32_t b, int s, int64_t k, int32_t& lo_out, int32_t& hi_out) {
  const int64_t round = int64_t{1} << (s - 1);
  const auto t = [&](int64_t y) { return y * m + b + round; };
  const auto q = [&](int64_t y) { return stage_int8(static_cast<int32_t>(y), m, b, s); };
  int64_t lo = -k, hi = k;
  if (m == 0) {
    lo = hi = 0;
  } else {
    // t >= 127*2^S saturates at 127, t <= -126*2^S - 1 at -127; one step of slack each side
    const double up = static_cast<double>((int64_t{127} << s) - b - round);
    const double dn = static_cast<double>(-(int64_t{126} << s) - 1 - b - round);
    const double yu = up / m, yd = dn / m;  // m > 0: yd < yu; m < 0: yu < yd
    const double ylo = (m > 0 ? std::floor(yd) : std::floor(yu)) - 1;
    const double yhi = (m > 0 ? std::ceil(yu) : std::ceil(yd)) + 1;
    if (ylo > static_cast<double>(-k)) lo = static_cast<int64_t>(std::min<double>(ylo, static_cast<double>(k)));
    if (yhi < static_cast<double>(k)) hi = static_cast<int64_t>(std::max<double>(yhi, static_cast<double>(-k)));
  }
  if (lo > hi) return false;
  const int64_t i32min = std::numeric_limits<int32_t>::min(), i32max = std::numeric_limits<int32_t>::max();
  if (t(lo) < i32min || t(lo) > i32max || t(hi) < i32min || t(hi) > i32max) return false;
  if (m != 0 && lo > -k && q(lo) != (m > 0 ? -127 : 127)) return false;  // m = 0: q is constant
  if (m != 0 && hi < k && q(hi) != (m > 0 ? 127 : -127)) return false;
  lo_out = static_cast<int32_t>(lo);
  hi_out = static_cast<int32_t>(hi);
  return true;
}

// int8_window for channels [0, cout) into lo[], hi[]; false when one channel has none. A layer
// runs with the same stage on every call, so the last results are kept per thread (a small
// ring), found again by comparing the parameters themselves (never by address alone).
inline bool int8_windows(const OutputStage& st, int64_t cout, int64_t k, int32_t* lo, int32_t* hi) {
  struct Entry {
    std::vector<int32_t> m, b, lo, hi;
    int shift = 0;
    int64_t k = -1;
    bool ok = false;
  };
  static thread_local std::vector<Entry> ring(32);
  static thread_local size_t next = 0;
  const size_t bytes = static_cast<size_t>(cout) * sizeof(int32_t);
  for (const Entry& e : ring) {
    if (e.k == k && e.shift == st.shift && static_cast<int64_t>(e.m.size()) == cout &&
        std::memcmp(e.m.data(), st.multiplier, bytes) == 0 && std::memcmp(e.b.data(), st.bias, bytes) == 0) {
      if (e.ok) {
        std::memcpy(lo, e.lo.data(), bytes);
        std::memcpy(hi, e.hi.data(), bytes);
      }
      return e.ok;
    }
  }
  Entry& e = ring[next++ % ring.size()];
  e.m.assign(st.multiplier, st.multiplier + cout);
  e.b.assign(st.bias, st.bias + cout);
  e.shift = st.shift;
  e.k = k;
  e.ok = true;
  for (int64_t c = 0; c < cout && e.ok; ++c) e.ok = int8_window(st.multiplier[c], st.bias[c], st.shift, k, lo[c], hi[c]);
  if (e.ok) {
    e.lo.assign(lo, lo + cout);
    e.hi.assign(hi, hi + cout);
  }
  return e.ok;
}

inline StagePrep prepare_stage(const OutputStage& st, int64_t cout, int64_t k_bits) {
  StagePrep p;
  const size_t n = static_cast<size_t>(round_up(cout, 64));
  if (st.kind == OutputKind::bits) {
    // d = +1: bit = y < t;  d = -1: bit = y > t  <=>  -y < -t.  So bit = (d*y < d*t), and with
    // |y| <= K the threshold can be clamped to [-K, K+1] (the result does not change), which keeps
    // u = d*t - 1 and d*y inside int32 for every K < 2^31.
    p.d.assign(n, 1);
    p.u.assign(n, 0);
    for (int64_t c = 0; c < cout; ++c) {
      const int64_t d = st.direction[c] > 0 ? 1 : -1;
      const int64_t t = std::min<int64_t>(std::max<int64_t>(d * st.threshold[c], -k_bits), k_bits + 1);
      p.d[c] = static_cast<int32_t>(d);
      p.u[c] = static_cast<int32_t>(t - 1);
    }
  } else if (st.kind == OutputKind::int8) {
    // Fast path in int32 lanes when no intermediate can leave int32: the exact int64 formula
    // and the int32 one then agree (arithmetic shift = floor division in both).
    p.m.assign(n, 0);
    p.b.assign(n, 0);
    const int64_t round = int64_t{1} << (st.shift - 1);
    int64_t worst = 0;
    for (int64_t c = 0; c < cout; ++c) {
      const int64_t m = st.multiplier[c], b = st.bias[c];
      const int64_t bound = k_bits * (m < 0 ? -m : m) + (b < 0 ? -b : b) + round;
      worst = bound > worst ? bound : worst;
      p.m[c] = st.multiplier[c];
      p.b[c] = static_cast<int32_t>(b + round > std::numeric_limits<int32_t>::max() ? 0 : b + round);
    }
    p.int8_fast = worst <= std::numeric_limits<int32_t>::max();
    // a window needs 127 * 2^S (the span of t that does not saturate) inside int32
    if (!p.int8_fast && (int64_t{127} << st.shift) < std::numeric_limits<int32_t>::max()) {
      p.lo.assign(n, 0);
      p.hi.assign(n, 0);
      p.int8_win = int8_windows(st, cout, k_bits, p.lo.data(), p.hi.data());
      for (int64_t c = 0; c < cout && p.int8_win; ++c)  // mod 2^32: the clamped sum is int32
        p.b[c] = static_cast<int32_t>(static_cast<uint32_t>(int64_t{st.bias[c]} + round));
      if (p.int8_win) return p;
    }
    // Otherwise (a converter that keeps ~27-bit multipliers, e.g. BNN-Clip blocks) the exact
    // formula in float64 lanes: y*M and the sum with B + 2^(S-1) are integers below 2^53, so
    // every step is exact, v * 2^-S is an exact power-of-two scaling and floor() is the
    // arithmetic shift. worst <= K*2^31 + 2^31 + 2^30 < 2^63 for K < 2^31 (no int64 overflow).
    if (!p.int8_fast && worst < (int64_t{1} << 53)) {
      p.int8_f64 = true;
      p.md.assign(n, 0.0);
      p.bd.assign(n, 0.0);
      for (int64_t c = 0; c < cout; ++c) {
        p.md[c] = static_cast<double>(st.multiplier[c]);
        p.bd[c] = static_cast<double>(static_cast<int64_t>(st.bias[c]) + round);
      }
    }
  } else if (st.kind == OutputKind::f32) {
    p.scale.assign(n, 0.f);
    p.bias.assign(n, 0.f);
    for (int64_t c = 0; c < cout; ++c) {
      p.scale[c] = st.scale[c];
      p.bias[c] = st.fbias[c];
    }
  }
  return p;
}

// Same contract as write_stage_scalar. dots rows must be readable up to round_up(c1-c0, 8).
inline void write_stage_avx2(const OutputStage& st, const StagePrep& sp, const int32_t* dots,
                             int64_t ld, int64_t npix, int64_t pix0, int64_t c0, int64_t c1,
                             int64_t cout, void* out) {
  if (st.kind == OutputKind::int8 && !sp.int8_fast && !sp.int8_win && !sp.int8_f64) {
    write_stage_scalar(st, dots, ld, npix, pix0, c0, c1, cout, out);
    return;
  }
  const int64_t vec_end = c0 + (c1 - c0) / 8 * 8;  // channels [c0, vec_end) in full vectors
  for (int64_t p = 0; p < npix; ++p) {
    const int32_t* y = dots + p * ld - c0;
    const int64_t pix = pix0 + p;
    switch (st.kind) {
      case OutputKind::int32: {
        int32_t* o = static_cast<int32_t*>(out) + pix * cout;
        std::memcpy(o + c0, y + c0, static_cast<size_t>(c1 - c0) * sizeof(int32_t));
        break;
      }
      case OutputKind::bits: {
        // bit = d*y < d*t = NOT(d*y > u): vpsignd, vpcmpgtd, vmovmskps per 8 channels, the word
        // inverted at the end.
        const int64_t words = (cout + 63) / 64;
        uint64_t* o = static_cast<uint64_t*>(out) + pix * words;
        auto group = [&](int64_t c) __attribute__((always_inline)) {
          const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c));
          const __m256i dv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp.d.data() + c));
          const __m256i uv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp.u.data() + c));
          return static_cast<uint64_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_sign_epi32(yv, dv), uv))));
        };
        for (int64_t wi = c0 / 64; wi * 64 < c1; ++wi) {
          uint64_t gt = 0;
          const int64_t valid = c1 - wi * 64;  // padding bits (channels >= cout) are 0
          if (valid >= 64) {
            for (int g = 0; g < 8; ++g) gt |= group(wi * 64 + g * 8) << (g * 8);
            o[wi] = ~gt;
          } else {
            for (int64_t g = 0; g * 8 < valid; ++g) gt |= group(wi * 64 + g * 8) << (g * 8);
            o[wi] = ~gt & ((uint64_t{1} << valid) - 1);
          }
        }
        break;
      }
      case OutputKind::int8: {
        int8_t* o = static_cast<int8_t*>(out) + pix * cout;
        const __m128i sh = _mm_cvtsi32_si128(st.shift);
        const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
        int64_t c = c0;
        if (sp.int8_f64) {
          const __m256d inv = _mm256_set1_pd(1.0 / static_cast<double>(int64_t{1} << st.shift));
          const __m256d dlo = _mm256_set1_pd(-127.0), dhi = _mm256_set1_pd(127.0);
          auto half = [&](__m128i y4, int64_t cc) __attribute__((always_inline)) {
            const __m256d v = _mm256_add_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(y4), _mm256_loadu_pd(sp.md.data() + cc)),
                                            _mm256_loadu_pd(sp.bd.data() + cc));
            const __m256d q = _mm256_floor_pd(_mm256_mul_pd(v, inv));
            return _mm256_cvtpd_epi32(_mm256_min_pd(_mm256_max_pd(q, dlo), dhi));
          };
          for (; c < vec_end; c += 8) {
            const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c));
            const __m128i p16 = _mm_packs_epi32(half(_mm256_castsi256_si128(yv), c), half(_mm256_extracti128_si256(yv, 1), c + 4));
            _mm_storel_epi64(reinterpret_cast<__m128i*>(o + c), _mm_packs_epi16(p16, p16));
          }
        }
        for (; c < vec_end; c += 8) {  // int32 lanes (int8_fast; int8_win on y clamped to its window)
          __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c));
          if (sp.int8_win)
            yv = _mm256_min_epi32(_mm256_max_epi32(yv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp.lo.data() + c))),
                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp.hi.data() + c)));
          const __m256i mv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp.m.data() + c));
          const __m256i bv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp.b.data() + c));
          __m256i v = _mm256_sra_epi32(_mm256_add_epi32(_mm256_mullo_epi32(yv, mv), bv), sh);
          v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
          const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
          _mm_storel_epi64(reinterpret_cast<__m128i*>(o + c), _mm_packs_epi16(p16, p16));
        }
        for (; c < c1; ++c) o[c] = stage_int8(y[c], st.multiplier[c], st.bias[c], st.shift);
        break;
      }
      case OutputKind::f32: {
        float* o = static_cast<float*>(out) + pix * cout;
        int64_t c = c0;
        for (; c < vec_end; c += 8) {
          const __m256 yv = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c)));
          const __m256 prod = _mm256_mul_ps(yv, _mm256_loadu_ps(sp.scale.data() + c));
          _mm256_storeu_ps(o + c, _mm256_add_ps(prod, _mm256_loadu_ps(sp.bias.data() + c)));
        }
        for (; c < c1; ++c) o[c] = stage_float(y[c], st.scale[c], st.fbias[c]);
        break;
      }
    }
  }
}

}  // namespace
}  // namespace onebit::kernels
