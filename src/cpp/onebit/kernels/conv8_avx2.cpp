// AVX2 int8 convolution.
//
// Why not vpmaddubsw: it multiplies u8 x s8 and adds pairs into SATURATING int16
// (255*127*2 > 32767), which would silently clip. Instead the input is converted once per call
// to an int16 image of x - zp (exact: |x - zp| <= 510) with an explicit zero border (padded
// taps = real zero), and weights are widened to int16 and laid out as
// [cout block of 16][tap row][pair][16][2]. vpmaddwd multiplies int16 pairs into exact int32
// sums: one broadcast 32-bit pair of the image times one weight vector gives 8 output
// channels x 2 taps. A tap row of a receptive field is kw*cin contiguous values of the image,
// so no per-pixel gather (im2col) is needed. Register block: 6 pixels x 16 output
// channels (12 accumulators, 2 weight vectors, 1 broadcast); the 16-channel weight block is
// reused across a whole output row so it stays in L1. The dispatcher proved the int32
// accumulator cannot overflow, so the result equals the scalar reference exactly; the output
// stages below perform the reference's integer / float operations lane by lane.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "onebit/kernels/conv8_kernels.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {

namespace {

constexpr int kTile = 6;  // output pixels per register block

// Accumulators of P output pixels x all output channels. base[p] points at the top-left tap of
// pixel p in the padded int16 image; tap row i starts row_stride further per row, and holds
// s2 int16 pairs (kw*cin values, plus one slot whose weight is 0 when kw*cin is odd).
template <int P>
void compute_tile(const int16_t* const* base, int64_t row_stride, int kh, int64_t s2,
                  const int16_t* wpack, int64_t cbn, int32_t* const* acc) {
  const int64_t k2n = kh * s2;
  for (int64_t cb = 0; cb < cbn; ++cb) {
    __m256i s[P][2];
    for (int p = 0; p < P; ++p) s[p][0] = s[p][1] = _mm256_setzero_si256();
    const int16_t* wp = wpack + cb * k2n * 32;
    for (int i = 0; i < kh; ++i) {
      const int16_t* rp[P];
      for (int p = 0; p < P; ++p) rp[p] = base[p] + i * row_stride;
      for (int64_t t = 0; t < s2; ++t, wp += 32) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + 16));
        for (int p = 0; p < P; ++p) {
          int32_t pair;
          std::memcpy(&pair, rp[p] + 2 * t, 4);
          const __m256i b = _mm256_set1_epi32(pair);
          s[p][0] = _mm256_add_epi32(s[p][0], _mm256_madd_epi16(b, w0));
          s[p][1] = _mm256_add_epi32(s[p][1], _mm256_madd_epi16(b, w1));
        }
      }
    }
    for (int p = 0; p < P; ++p) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc[p] + cb * 16), s[p][0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc[p] + cb * 16 + 8), s[p][1]);
    }
  }
}

inline __m256i pack_4x_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Even 64-bit lanes: clamp(floor((y*M + B + 2^(S-1)) / 2^S), -127, 127) in exact int64.
// vpmuldq gives the signed 64-bit products (and sign-extends B when multiplied by 1); AVX2
// lacks a 64-bit arithmetic shift, so shift (t + 2^63) logically: that equals
// floor(t / 2^S) + 2^(63-S) exactly since 2^S divides 2^63.
inline __m256i requant_half(__m256i y, __m256i m, __m256i b, __m256i rnd, __m128i sh,
                            __m256i bias_out) {
  __m256i t = _mm256_mul_epi32(y, m);
  t = _mm256_add_epi64(t, _mm256_mul_epi32(b, _mm256_set1_epi64x(1)));
  t = _mm256_add_epi64(t, rnd);
  t = _mm256_xor_si256(t, _mm256_set1_epi64x(static_cast<int64_t>(0x8000000000000000ULL)));
  t = _mm256_sub_epi64(_mm256_srl_epi64(t, sh), bias_out);
  const __m256i hi = _mm256_set1_epi64x(127), lo = _mm256_set1_epi64x(-127);
  t = _mm256_blendv_epi8(t, hi, _mm256_cmpgt_epi64(t, hi));
  return _mm256_blendv_epi8(t, lo, _mm256_cmpgt_epi64(lo, t));
}

inline __m256i requant8(__m256i y, __m256i m, __m256i b, __m256i rnd, __m128i sh,
                        __m256i bias_out) {
  const __m256i even = requant_half(y, m, b, rnd, sh, bias_out);
  const __m256i odd = requant_half(_mm256_srli_epi64(y, 32), _mm256_srli_epi64(m, 32),
                                   _mm256_srli_epi64(b, 32), rnd, sh, bias_out);
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

inline __m256i ld(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

}  // namespace

void conv8_stage_avx2(const int32_t* acc, const Conv8Stage& st, int64_t cout, const int32_t* dirneg,
                      void* out_pixel) {
  switch (st.kind) {
    case Conv8Out::int32:
      std::memcpy(out_pixel, acc, cout * sizeof(int32_t));
      return;
    case Conv8Out::f32: {
      auto out = static_cast<float*>(out_pixel);
      int64_t o = 0;
      for (; o + 8 <= cout; o += 8) {
        const __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(ld(acc + o)), _mm256_loadu_ps(st.scale + o));
        _mm256_storeu_ps(out + o, _mm256_add_ps(p, _mm256_loadu_ps(st.fbias + o)));
      }
      if (o < cout) conv8_stage_scalar(acc, o, cout, st, out_pixel);
      return;
    }
    case Conv8Out::int8: {
      auto out = static_cast<int8_t*>(out_pixel);
      const __m128i sh = _mm_cvtsi32_si128(st.shift);
      const __m256i rnd = _mm256_set1_epi64x(int64_t{1} << (st.shift - 1));
      const __m256i bias_out = _mm256_set1_epi64x(int64_t{1} << (63 - st.shift));
      int64_t o = 0;
      for (; o + 32 <= cout; o += 32) {
        __m256i q[4];
        for (int v = 0; v < 4; ++v)
          q[v] = requant8(ld(acc + o + 8 * v), ld(st.multiplier + o + 8 * v),
                          ld(st.bias + o + 8 * v), rnd, sh, bias_out);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + o), pack_4x_i32_to_i8(q[0], q[1], q[2], q[3]));
      }
      if (o < cout) conv8_stage_scalar(acc, o, cout, st, out_pixel);
      return;
    }
    case Conv8Out::bits: {
      auto out = static_cast<uint64_t*>(out_pixel);
      for (int64_t base = 0; base < cout; base += 64) {
        const int64_t end = std::min<int64_t>(cout, base + 64);
        uint64_t word = 0;
        int64_t o = base;
        for (; o + 8 <= end; o += 8) {
          const __m256i y = ld(acc + o), t = ld(st.threshold + o);
          // bit 1 = -1: (y < t) where d = +1, (y > t) where d = -1.
          const __m256i neg = _mm256_blendv_epi8(_mm256_cmpgt_epi32(t, y), _mm256_cmpgt_epi32(y, t),
                                                 ld(dirneg + o));
          word |= uint64_t(unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(neg)))) << (o - base);
        }
        for (; o < end; ++o) {
          const bool neg = st.direction[o] > 0 ? acc[o] < st.threshold[o] : acc[o] > st.threshold[o];
          word |= uint64_t{neg} << (o - base);
        }
        out[base / 64] = word;
      }
      return;
    }
  }
}

namespace {

// One input row (w pixels) as int16 x - zp into the padded image (exact: |x - zp| <= 510).
void convert_row(const Conv8Args& a, const int16_t* zp16, int64_t n, int64_t iy, int16_t* dst) {
  const Conv8Geom& g = a.g;
  const int64_t off = (n * g.h + iy) * g.w * g.cin;
  for (int64_t ix = 0; ix < g.w; ++ix) {
    int16_t* d = dst + ix * g.cin;
    int64_t c = 0;
    if (a.x_signed) {
      const int8_t* s = static_cast<const int8_t*>(a.x) + off + ix * g.cin;
      for (; c + 16 <= g.cin; c += 16) {
        const __m256i v = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + c)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c),
                            _mm256_sub_epi16(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp16 + c))));
      }
      for (; c < g.cin; ++c) d[c] = static_cast<int16_t>(s[c] - zp16[c]);
    } else {
      const uint8_t* s = static_cast<const uint8_t*>(a.x) + off + ix * g.cin;
      for (; c + 16 <= g.cin; c += 16) {
        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + c)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c),
                            _mm256_sub_epi16(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp16 + c))));
      }
      for (; c < g.cin; ++c) d[c] = static_cast<int16_t>(s[c] - zp16[c]);
    }
  }
}

}  // namespace

void conv8_avx2(const Conv8Args& a, int threads) {
  const Conv8Geom& g = a.g;
  // The input, converted once to int16 (x - zp) inside an explicit zero border (zero = real 0,
  // the padding semantics): every tap row of a receptive field is then kw*cin contiguous values,
  // read in place (no per-pixel gather).
  const int64_t hp = g.h + 2 * g.ph, wpd = g.w + 2 * g.pw;
  const int64_t row_stride = wpd * g.cin;
  std::vector<int16_t> img(g.n * hp * row_stride + 16, 0);  // +16: pair reads past a row end
  std::vector<int16_t> zp16(g.cin);
  for (int64_t c = 0; c < g.cin; ++c) zp16[c] = static_cast<int16_t>(a.zero_point[c]);
  parallel_for(g.n * g.h, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.h, iy = r % g.h;
      convert_row(a, zp16.data(), n, iy,
                  img.data() + (n * hp + iy + g.ph) * row_stride + g.pw * g.cin);
    }
  });
  // int16 weights [cout block of 16][tap row i][pair t][16 channels][2], zero padded (odd
  // kw*cin and cout tails), matching the pair layout of the image rows.
  const int64_t seg = int64_t{g.kw} * g.cin, s2 = (seg + 1) / 2, k2n = g.kh * s2;
  const int64_t cbn = (g.cout + 15) / 16;
  std::vector<int16_t> wpack(cbn * k2n * 32, 0);
  // Written sequentially (up to 16 weight rows read in step), one cout block per work item.
  parallel_for(cbn, threads, [&](int64_t c0, int64_t c1) {
    for (int64_t cb = c0; cb < c1; ++cb) {
      const int64_t no = std::min<int64_t>(16, g.cout - cb * 16);
      int16_t* dst = wpack.data() + cb * k2n * 32;
      for (int i = 0; i < g.kh; ++i)
        for (int64_t t = 0; t < s2; ++t, dst += 32) {
          const bool odd_tail = 2 * t + 1 >= seg;  // the pair's second slot is padding
          const int8_t* src = a.w + (cb * 16 * g.kh + i) * seg + 2 * t;
          for (int64_t o = 0; o < no; ++o, src += g.kh * seg) {
            dst[2 * o] = src[0];
            dst[2 * o + 1] = odd_tail ? int16_t{0} : int16_t{src[1]};
          }
        }
    }
  });
  std::vector<int32_t> dirneg;
  if (a.stage.kind == Conv8Out::bits) {
    dirneg.resize(g.cout);
    for (int64_t o = 0; o < g.cout; ++o) dirneg[o] = a.stage.direction[o] < 0 ? -1 : 0;
  }
  const int64_t per_px = conv8_out_per_pixel(g, a.stage.kind);
  const size_t esz = conv8_out_elem_size(a.stage.kind);
  // Per output row: for each block of 16 output channels (its weights stay in L1), all pixel
  // tiles of the row; then the output stage of each pixel.
  parallel_for(g.n * g.oh, threads, [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> accs(g.ow * cbn * 16);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      const int16_t* row = img.data() + (n * hp + oy * g.sh) * row_stride;
      for (int64_t cb = 0; cb < cbn; ++cb) {
        const int16_t* wcb = wpack.data() + cb * k2n * 32;
        for (int64_t ox0 = 0; ox0 < g.ow; ox0 += kTile) {
          const int np = static_cast<int>(std::min<int64_t>(kTile, g.ow - ox0));
          const int16_t* bp[kTile];
          int32_t* ap[kTile];
          for (int p = 0; p < np; ++p) {
            bp[p] = row + (ox0 + p) * g.sw * g.cin;
            ap[p] = accs.data() + (ox0 + p) * cbn * 16 + cb * 16;
          }
          switch (np) {
            case 6: compute_tile<6>(bp, row_stride, g.kh, s2, wcb, 1, ap); break;
            case 5: compute_tile<5>(bp, row_stride, g.kh, s2, wcb, 1, ap); break;
            case 4: compute_tile<4>(bp, row_stride, g.kh, s2, wcb, 1, ap); break;
            case 3: compute_tile<3>(bp, row_stride, g.kh, s2, wcb, 1, ap); break;
            case 2: compute_tile<2>(bp, row_stride, g.kh, s2, wcb, 1, ap); break;
            default: compute_tile<1>(bp, row_stride, g.kh, s2, wcb, 1, ap); break;
          }
        }
      }
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        void* out = static_cast<char*>(a.y) + (r * g.ow + ox) * per_px * esz;
        conv8_stage_avx2(accs.data() + ox * cbn * 16, a.stage, g.cout, dirneg.data(), out);
      }
    }
  });
}

}  // namespace onebit::kernels
