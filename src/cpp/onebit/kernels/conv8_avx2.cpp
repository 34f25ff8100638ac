// AVX2 int8 convolution.
//
// Why not vpmaddubsw: it multiplies u8 x s8 and adds pairs into SATURATING int16
// (255*127*2 > 32767), which would silently clip. Instead the input is converted once per call
// to an int16 image of x - zp (exact: |x - zp| <= 510) with an explicit zero border (padded
// taps = real zero), and weights are widened to int16 and laid out as
// [cout block of 16][tap row][pair][16][2]. vpmaddwd multiplies int16 pairs into exact int32
// sums: one broadcast 32-bit pair of the image times one weight vector gives 8 output
// channels x 2 taps. A tap row of a receptive field is kw*cin contiguous values of the image,
// so no per-pixel gather (im2col) is needed; when kw*cin is odd the last pair of a tap row
// reads one value of the next pixel, whose weight slot is 0.
//
// Register block: P <= 6 pixels x 16 output channels (2P accumulators, 2 weight vectors, 1
// broadcast). One tile function per (P, output stage), kept out of line so its 12 accumulators
// and 6 pixel pointers never spill; the row is cut into balanced tiles (e.g. 32 = 6+6+6+6+4+4).
// The output stage runs on the tile's registers and writes the output directly (no int32
// scratch row). The 16-channel weight block is reused across a whole output row (L1).
// The dispatcher proved the int32 accumulator cannot overflow, so the result equals the scalar
// reference exactly; the output stages perform the reference's integer / float operations lane
// by lane (float: two roundings, no FMA).
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "onebit/kernels/conv8_kernels.h"
#include "onebit/kernels/fix64_avx2.h"
#include "onebit/kernels/output_avx2.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {

namespace {

// Even 64-bit lanes: clamp(floor((y*M + B + 2^(S-1)) / 2^S), -127, 127) in exact int64.
// vpmuldq gives the signed 64-bit products (and sign-extends B when multiplied by 1); AVX2
// lacks a 64-bit arithmetic shift, so shift (t + 2^63) logically: that equals
// floor(t / 2^S) + 2^(63-S) exactly since 2^S divides 2^63.
inline __m256i requant_half(__m256i y, __m256i m, __m256i b, __m256i rnd, __m128i sh,
                            __m256i bias_out) {
  __m256i t = _mm256_mul_epi32(y, m);
  t = _mm256_add_epi64(t, _mm256_mul_epi32(b, _mm256_set1_epi64x(1)));
  return floor_shift_clamp127(_mm256_add_epi64(t, rnd), sh, bias_out);
}

inline __m256i requant8(__m256i y, __m256i m, __m256i b, __m256i rnd, __m128i sh,
                        __m256i bias_out) {
  const __m256i even = requant_half(y, m, b, rnd, sh, bias_out);
  const __m256i odd = requant_half(_mm256_srli_epi64(y, 32), _mm256_srli_epi64(m, 32),
                                   _mm256_srli_epi64(b, 32), rnd, sh, bias_out);
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// 8 int32 lanes: clamp(floor((y*md + bd) * inv), -127, 127) in float64 (exact, see TileCtx).
inline __m256i requant8_f64(__m256i y, const double* md, const double* bd, __m256d inv) {
  const __m256d lo = _mm256_set1_pd(-127.0), hi = _mm256_set1_pd(127.0);
  auto half = [&](__m128i y4, int k) __attribute__((always_inline)) {
    const __m256d v = _mm256_add_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(y4), _mm256_loadu_pd(md + k)),
                                    _mm256_loadu_pd(bd + k));
    const __m256d q = _mm256_floor_pd(_mm256_mul_pd(v, inv));
    return _mm256_cvtpd_epi32(_mm256_min_pd(_mm256_max_pd(q, lo), hi));
  };
  return _mm256_set_m128i(half(_mm256_extracti128_si256(y, 1), 4),
                          half(_mm256_castsi256_si128(y), 0));
}

inline __m256i ld(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

}  // namespace

namespace {

constexpr int kTile = 6;  // output pixels per register block (12 accumulators)

// Per-call constants of the tile functions. Stage parameters are padded to whole 16-channel
// blocks (zeros / +1 direction past cout) so tiles never read past an array.
struct TileCtx {
  int64_t ps = 0;          // int16 values between horizontally adjacent output pixels (sw * cin)
  int64_t row_stride = 0;  // int16 values per padded image row
  int kh = 0;
  int64_t s2 = 0;          // int16 pairs per tap row
  int64_t cout = 0, words = 0, out_px = 0;  // output elements per pixel: cout or words (bits)
  const int32_t *thr = nullptr, *dirneg = nullptr, *mul = nullptr, *bias = nullptr;
  const float *scale = nullptr, *fbias = nullptr;
  int shift = 0;
  // int8: per 16-channel block, the largest |y| for which y*M + B + 2^(S-1) provably stays in
  // int32 for every channel of the block (-1: never); tiles whose accumulators all satisfy it
  // take the 32-bit path, which then equals the int64 formula exactly.
  const int32_t* ymax32 = nullptr;
  // int8, tiles that fail that test: when |y*M| + |B + 2^(S-1)| < 2^53 for every |y| <= the
  // proven bound, the exact formula in float64 lanes (md = M, bd = B + 2^(S-1); every step is
  // an exact integer, the scaling by 2^-S exact, floor() the arithmetic shift); else int64
  // emulation.
  const double *md = nullptr, *bd = nullptr;
  // int8 with a saturation window (StagePrep::int8_win): y clamped to [wlo, whi] per channel,
  // then the 32-bit path with wb = B + 2^(S-1) (mod 2^32) on every tile.
  const int32_t *wlo = nullptr, *whi = nullptr, *wb = nullptr;
};

inline __m256i bcast_pair(const int16_t* p) {  // one 32-bit load broadcast (vbroadcastss)
  return _mm256_castps_si256(_mm256_broadcast_ss(reinterpret_cast<const float*>(p)));
}

inline __m256i lane_mask(int64_t n) {  // lanes [0, n) all ones (n clamped to [0, 8])
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 0 ? 0 : n > 8 ? 8 : n)), idx);
}

// P output pixels x 16 output channels [c0, c0 + 16): accumulate over the receptive field,
// then run the output stage KIND on the registers and write pixel p at out + p * c.out_px.
// px0: the first pixel's receptive field (top-left tap) in the padded int16 image.
template <int P, OutputKind KIND>
__attribute__((noinline)) void tile(const TileCtx& c, const int16_t* px0, const int16_t* wp,
                                    int64_t c0, void* out) {
  __m256i acc[P][2];
#pragma GCC unroll 6
  for (int p = 0; p < P; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_si256();
  for (int i = 0; i < c.kh; ++i) {
    const int16_t* rp[P];
#pragma GCC unroll 6
    for (int p = 0; p < P; ++p) rp[p] = px0 + i * c.row_stride + p * c.ps;
#pragma GCC unroll 1
    for (int64_t t = 0; t < c.s2; ++t, wp += 32) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + 16));
#pragma GCC unroll 6
      for (int p = 0; p < P; ++p) {
        const __m256i b = bcast_pair(rp[p] + 2 * t);
        acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(b, w0));
        acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(b, w1));
      }
    }
  }
  const int64_t valid = c.cout - c0;  // channels of this block that exist (may exceed 16)
  if constexpr (KIND == OutputKind::int32 || KIND == OutputKind::f32) {
    __m256 s0, s1, b0, b1;
    if constexpr (KIND == OutputKind::f32) {
      s0 = _mm256_loadu_ps(c.scale + c0), s1 = _mm256_loadu_ps(c.scale + c0 + 8);
      b0 = _mm256_loadu_ps(c.fbias + c0), b1 = _mm256_loadu_ps(c.fbias + c0 + 8);
    }
    const bool full = valid >= 16;
    const __m256i m0 = lane_mask(valid), m1 = lane_mask(valid - 8);
#pragma GCC unroll 6
    for (int p = 0; p < P; ++p) {
      int32_t* d = static_cast<int32_t*>(out) + p * c.out_px + c0;
      __m256i v0 = acc[p][0], v1 = acc[p][1];
      if constexpr (KIND == OutputKind::f32) {
        v0 = _mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v0), s0), b0));
        v1 = _mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v1), s1), b1));
      }
      if (full) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), v0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 8), v1);
      } else {
        _mm256_maskstore_epi32(d, m0, v0);
        _mm256_maskstore_epi32(d + 8, m1, v1);
      }
    }
  } else if constexpr (KIND == OutputKind::bits) {
    const __m256i t0 = ld(c.thr + c0), t1 = ld(c.thr + c0 + 8);
    const __m256i d0 = ld(c.dirneg + c0), d1 = ld(c.dirneg + c0 + 8);
    const uint32_t keep = valid >= 16 ? 0xFFFFu : (1u << valid) - 1;
#pragma GCC unroll 6
    for (int p = 0; p < P; ++p) {
      // bit 1 = -1: (y < t) where d = +1, (y > t) where d = -1.
      const __m256i n0 = _mm256_blendv_epi8(_mm256_cmpgt_epi32(t0, acc[p][0]),
                                            _mm256_cmpgt_epi32(acc[p][0], t0), d0);
      const __m256i n1 = _mm256_blendv_epi8(_mm256_cmpgt_epi32(t1, acc[p][1]),
                                            _mm256_cmpgt_epi32(acc[p][1], t1), d1);
      const uint32_t m = (unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(n0))) |
                          unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(n1))) << 8) & keep;
      static_cast<uint64_t*>(out)[p * c.out_px + c0 / 64] |= uint64_t{m} << (c0 % 64);
    }
  } else {  // int8
    const __m128i sh = _mm_cvtsi32_si128(c.shift);
    const __m256i rnd = _mm256_set1_epi64x(int64_t{1} << (c.shift - 1));
    const __m256i bias_out = _mm256_set1_epi64x(int64_t{1} << (63 - c.shift));
    const __m256i m0 = ld(c.mul + c0), m1 = ld(c.mul + c0 + 8);
    __m256i b0 = ld(c.bias + c0), b1 = ld(c.bias + c0 + 8);
    bool fast = true;
    __m256i rnd32 = _mm256_set1_epi32(int32_t{1} << (c.shift - 1));
    if (c.wlo) {
      const __m256i l0 = ld(c.wlo + c0), l1 = ld(c.wlo + c0 + 8);
      const __m256i h0 = ld(c.whi + c0), h1 = ld(c.whi + c0 + 8);
#pragma GCC unroll 6
      for (int p = 0; p < P; ++p) {
        acc[p][0] = _mm256_min_epi32(_mm256_max_epi32(acc[p][0], l0), h0);
        acc[p][1] = _mm256_min_epi32(_mm256_max_epi32(acc[p][1], l1), h1);
      }
      b0 = ld(c.wb + c0);
      b1 = ld(c.wb + c0 + 8);
      rnd32 = _mm256_setzero_si256();
    } else {
      __m256i amax = _mm256_setzero_si256();
#pragma GCC unroll 6
      for (int p = 0; p < P; ++p)
        amax = _mm256_max_epi32(amax, _mm256_max_epi32(_mm256_abs_epi32(acc[p][0]),
                                                       _mm256_abs_epi32(acc[p][1])));
      fast = _mm256_testz_si256(
          _mm256_cmpgt_epi32(amax, _mm256_set1_epi32(c.ymax32[c0 / 16])), _mm256_set1_epi32(-1));
    }
    const __m256d inv = _mm256_set1_pd(1.0 / static_cast<double>(int64_t{1} << c.shift));
    const __m256i hi = _mm256_set1_epi32(127), lo = _mm256_set1_epi32(-127);
#pragma GCC unroll 6
    for (int p = 0; p < P; ++p) {
      __m256i q0, q1;
      if (fast) {  // |y*M + B + 2^(S-1)| < 2^31: the int32 arithmetic shift is the int64 floor
        q0 = _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(acc[p][0], m0), b0), rnd32);
        q1 = _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(acc[p][1], m1), b1), rnd32);
        q0 = _mm256_sra_epi32(q0, sh);
        q1 = _mm256_sra_epi32(q1, sh);
        q0 = _mm256_max_epi32(_mm256_min_epi32(q0, hi), lo);
        q1 = _mm256_max_epi32(_mm256_min_epi32(q1, hi), lo);
      } else if (c.md) {
        q0 = requant8_f64(acc[p][0], c.md + c0, c.bd + c0, inv);
        q1 = requant8_f64(acc[p][1], c.md + c0 + 8, c.bd + c0 + 8, inv);
      } else {
        q0 = requant8(acc[p][0], m0, b0, rnd, sh, bias_out);
        q1 = requant8(acc[p][1], m1, b1, rnd, sh, bias_out);
      }
      // int32 lanes in [-127, 127] -> 16 int8 in channel order
      const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
      const __m128i q = _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
      int8_t* d = static_cast<int8_t*>(out) + p * c.out_px + c0;
      store_bytes16(d, q, valid);
    }
  }
}

using TileFn = void (*)(const TileCtx&, const int16_t*, const int16_t*, int64_t, void*);

template <OutputKind KIND>
TileFn tile_fn(int p) {
  switch (p) {
    case 6: return tile<6, KIND>;
    case 5: return tile<5, KIND>;
    case 4: return tile<4, KIND>;
    case 3: return tile<3, KIND>;
    case 2: return tile<2, KIND>;
    default: return tile<1, KIND>;
  }
}

TileFn pick_tile(OutputKind kind, int p) {
  switch (kind) {
    case OutputKind::int32: return tile_fn<OutputKind::int32>(p);
    case OutputKind::bits: return tile_fn<OutputKind::bits>(p);
    case OutputKind::int8: return tile_fn<OutputKind::int8>(p);
    case OutputKind::f32: break;
  }
  return tile_fn<OutputKind::f32>(p);
}

// Tile sizes covering a row of ow pixels: 6s, with a short remainder (1-3) merged into the
// last 6 and split evenly (7 = 4+3, 8 = 4+4, 9 = 5+4) so no tile wastes its weight loads.
std::vector<int> row_tiles(int64_t ow) {
  std::vector<int> t(static_cast<size_t>(ow / kTile), kTile);
  const int r = static_cast<int>(ow % kTile);
  if (r >= 4 || (r > 0 && t.empty())) {
    t.push_back(r);
  } else if (r > 0) {
    t.back() = (kTile + r + 1) / 2;
    t.push_back((kTile + r) / 2);
  }
  return t;
}

template <class T>
const T* pad16(const T* src, int64_t n, int64_t padded, T fill, std::vector<T>& buf) {
  buf.assign(static_cast<size_t>(padded), fill);
  if (src) std::copy(src, src + n, buf.begin());
  return buf.data();
}

}  // namespace

void conv8_avx2(const Conv8Args& a, const Conv8Prepared& p, int threads) {
  const Conv8Geom& g = a.g;
  // The input, converted once to int16 (x - zp) inside an explicit zero border (zero = real 0,
  // the padding semantics): every tap row of a receptive field is then kw*cin contiguous values,
  // read in place (no per-pixel gather). +16: the odd last pair of a row reads one value past it.
  const int64_t hp = g.h + g.ph + g.ph_end, wpd = g.w + g.pw + g.pw_end;
  const int64_t row_stride = wpd * g.cin, rowlen = g.w * g.cin;
  const int64_t lpad = int64_t{g.pw} * g.cin, rpad = row_stride - lpad - rowlen;
  // Grow-only, kept by the thread: fresh allocations of these sizes cost page faults per call.
  static thread_local Scratch<int16_t> img_buf;
  const size_t img_len = static_cast<size_t>(g.n * hp * row_stride + 16);
  int16_t* const img = img_buf.get(img_len);
  std::fill(img + img_len - 16, img + img_len, int16_t{0});
  std::vector<int16_t> zrow(static_cast<size_t>(rowlen));  // zero points repeated along the row
  for (int64_t k = 0; k < rowlen; ++k) zrow[k] = static_cast<int16_t>(p.zero_point[k % g.cin]);
  parallel_for(g.n * hp, threads_for(static_cast<int64_t>(img_len) * 2, 65536, threads),
               [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int16_t* d = img + r * row_stride;
      const int64_t n = r / hp, iy = r % hp - g.ph;
      if (iy < 0 || iy >= g.h) {
        std::fill(d, d + row_stride, int16_t{0});
        continue;
      }
      std::fill(d, d + lpad, int16_t{0});
      std::fill(d + lpad + rowlen, d + lpad + rowlen + rpad, int16_t{0});
      d += lpad;
      const int64_t off = (n * g.h + iy) * rowlen;
      // d = s - zrow in int16; `widen` sign- or zero-extends 16 input bytes
      const auto subtract_zero_points = [&](const auto* s, auto widen) {
        int64_t k = 0;
        for (; k + 16 <= rowlen; k += 16)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + k), _mm256_sub_epi16(
              widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k))),
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zrow.data() + k))));
        for (; k < rowlen; ++k) d[k] = static_cast<int16_t>(s[k] - zrow[k]);
      };
      if (a.x_signed)
        subtract_zero_points(static_cast<const int8_t*>(a.x) + off,
                             [](__m128i v) { return _mm256_cvtepi8_epi16(v); });
      else
        subtract_zero_points(static_cast<const uint8_t*>(a.x) + off,
                             [](__m128i v) { return _mm256_cvtepu8_epi16(v); });
    }
  });
  const int64_t seg = int64_t{g.kw} * g.cin, s2 = (seg + 1) / 2, k2n = g.kh * s2;
  const int64_t cbn = (g.cout + 15) / 16, cpad = cbn * 16;
  const int16_t* const wpack = p.w16.data();  // conv8_prepare's pairs layout
  const OutputStage& st = a.stage;
  TileCtx c;
  c.ps = int64_t{g.sw} * g.cin;
  c.row_stride = row_stride;
  c.kh = g.kh;
  c.s2 = s2;
  c.cout = g.cout;
  c.words = (g.cout + 63) / 64;
  c.out_px = conv8_out_per_pixel(g, st.kind);
  std::vector<int32_t> thr, dirneg, mul, bias, ymax32;
  // int8: the saturation window (arrays padded to a multiple of 64 >= cpad)
  const StagePrep sp = st.kind == OutputKind::int8 ? prepare_stage(st, g.cout, p.ybound) : StagePrep{};
  Scratch<double> md, bd;
  std::vector<float> scale, fbias;
  switch (st.kind) {
    case OutputKind::int32: break;
    case OutputKind::bits: {
      c.thr = pad16(st.threshold, g.cout, cpad, 0, thr);
      dirneg.assign(static_cast<size_t>(cpad), 0);
      for (int64_t o = 0; o < g.cout; ++o) dirneg[o] = st.direction[o] < 0 ? -1 : 0;
      c.dirneg = dirneg.data();
      break;
    }
    case OutputKind::int8:
      c.mul = pad16(st.multiplier, g.cout, cpad, 0, mul);
      if (sp.int8_win) {
        c.wlo = sp.lo.data();
        c.whi = sp.hi.data();
        c.wb = sp.b.data();
      }
      c.bias = pad16(st.bias, g.cout, cpad, 0, bias);
      c.shift = st.shift;
      ymax32.assign(static_cast<size_t>(cbn), -1);
      for (int64_t cb = 0; cb < cbn; ++cb) {
        int64_t mmax = 0, bmax = 0;
        for (int64_t o = cb * 16; o < std::min(g.cout, cb * 16 + 16); ++o) {
          mmax = std::max<int64_t>(mmax, std::abs(int64_t{st.multiplier[o]}));
          bmax = std::max<int64_t>(bmax, std::abs(int64_t{st.bias[o]}));
        }
        const int64_t room = int64_t{INT32_MAX} - bmax - (int64_t{1} << (st.shift - 1));
        if (room >= 0) ymax32[cb] = static_cast<int32_t>(mmax ? std::min<int64_t>(room / mmax, INT32_MAX) : INT32_MAX);
      }
      c.ymax32 = ymax32.data();
      {
        int64_t mmax = 0, bmax = 0;
        for (int64_t o = 0; o < g.cout; ++o) {
          mmax = std::max<int64_t>(mmax, std::abs(int64_t{st.multiplier[o]}));
          bmax = std::max<int64_t>(bmax, std::abs(int64_t{st.bias[o]}));
        }
        const int64_t worst = p.ybound * mmax + bmax + (int64_t{1} << (st.shift - 1));
        if (worst < (int64_t{1} << 53)) {
          md.assign(static_cast<size_t>(cpad), 0.0);
          bd.assign(static_cast<size_t>(cpad), 0.0);
          for (int64_t o = 0; o < g.cout; ++o) {
            md[o] = static_cast<double>(st.multiplier[o]);
            bd[o] = static_cast<double>(int64_t{st.bias[o]} + (int64_t{1} << (st.shift - 1)));
          }
          c.md = md.data();
          c.bd = bd.data();
        }
      }
      break;
    case OutputKind::f32:
      c.scale = pad16(st.scale, g.cout, cpad, 0.0f, scale);
      c.fbias = pad16(st.fbias, g.cout, cpad, 0.0f, fbias);
      break;
  }
  const std::vector<int> tiles = row_tiles(g.ow);
  TileFn fns[kTile + 1];
  for (int p = 1; p <= kTile; ++p) fns[p] = pick_tile(st.kind, p);
  const size_t esz = static_cast<size_t>(output_elem_size(st.kind));
  // Per output row: for each block of 16 output channels (its weights stay in L1), the row's
  // tiles; each tile writes its pixels' outputs (bits: OR-ed into the zeroed row of words).
  // A thread gets at least ~0.5M multiply-adds (a few microseconds) of output rows.
  const int th = threads_for(g.n * g.oh * g.ow * g.cout * g.kh * seg, int64_t{1} << 19, threads);
  parallel_for(g.n * g.oh, th, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      const int16_t* row = img + (n * hp + oy * g.sh) * row_stride;
      char* orow = static_cast<char*>(a.y) + r * g.ow * c.out_px * esz;
      if (st.kind == OutputKind::bits) std::memset(orow, 0, static_cast<size_t>(g.ow * c.out_px) * esz);
      for (int64_t cb = 0; cb < cbn; ++cb) {
        const int16_t* wcb = wpack + cb * k2n * 32;
        int64_t ox = 0;
        for (int p : tiles) {
          fns[p](c, row + ox * c.ps, wcb, cb * 16, orow + ox * c.out_px * esz);
          ox += p;
        }
      }
      apply_stage_tail(st, g.ow, r * g.ow, 0, g.cout, g.cout, a.y);
    }
  });
}

int64_t mac_loop_avx2(int64_t iters) {
  // The kernel's inner step: vpmaddwd of a broadcast int16 pair with int16 weights, then vpaddd
  // into one of 6 independent accumulators (ymm9-ymm14; products in ymm3-ymm8), 16 multiply-adds
  // each; in asm so that everything stays in registers (see mac_loop_avx512).
  if (iters <= 0) return 0;
  const __m256i w0 = _mm256_set1_epi16(3), w1 = _mm256_set1_epi16(-5), u = _mm256_set1_epi16(7);
  int64_t n = iters;
  asm volatile(
      "vpxor %%ymm9, %%ymm9, %%ymm9\n\t"
      "vpxor %%ymm10, %%ymm10, %%ymm10\n\t"
      "vpxor %%ymm11, %%ymm11, %%ymm11\n\t"
      "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
      "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
      "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
      "1:\n\t"
      "vpmaddwd %[w0], %[u], %%ymm3\n\t"
      "vpmaddwd %[w1], %[u], %%ymm4\n\t"
      "vpmaddwd %[w0], %[u], %%ymm5\n\t"
      "vpmaddwd %[w1], %[u], %%ymm6\n\t"
      "vpmaddwd %[w0], %[u], %%ymm7\n\t"
      "vpmaddwd %[w1], %[u], %%ymm8\n\t"
      "vpaddd %%ymm3, %%ymm9, %%ymm9\n\t"
      "vpaddd %%ymm4, %%ymm10, %%ymm10\n\t"
      "vpaddd %%ymm5, %%ymm11, %%ymm11\n\t"
      "vpaddd %%ymm6, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm7, %%ymm13, %%ymm13\n\t"
      "vpaddd %%ymm8, %%ymm14, %%ymm14\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [n] "+r"(n)
      : [u] "x"(u), [w0] "x"(w0), [w1] "x"(w1)
      : "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
        "xmm14", "cc");
  return iters * 6 * 16;
}

}  // namespace onebit::kernels
