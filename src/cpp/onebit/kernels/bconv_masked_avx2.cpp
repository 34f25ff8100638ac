// AVX2 masked (pruned) binary direct convolution: the "list kernel". Also runs ISA avx512 with a
// mask (AVX-512 CPUs have AVX2; there is no AVX-512 masked kernel).
//
// Same popcount and blocking as the dense AVX2 kernel (bconv_avx2.cpp): nibble pre-split
// operands and the pshufb LUT, register tiles of P output pixels x 8 output channels, u8 lanes
// widened (psadbw) at least every 31 words, zero words for out-of-bounds taps with a weight
// popcount correction. What differs: per 8-output-channel block, the kernel does not walk every
// (kh, kw, word) of the kernel but a compact LIST of the active ones, built once in prepare:
// - an entry whose mask word is 0 for all 8 channels of the block is left out: word- and
//   block-structured pruning skip that work entirely;
// - a "full" entry (all 8 channels keep every real bit of the word) runs the dense inner loop:
//   popcount(x XOR w), no mask needed (x and w padding bits are 0);
// - a "partial" entry ANDs the nibble-split mask: popcount((x XOR w) AND m) per byte =
//   LUT[(xl ^ wl) & ml] + LUT[(xh ^ wh) & mh] (2 more ops per pixel and 4 channels: 8, not 6).
// The input is nibble-split once per call into rows with `pad` zero pixels on both sides, so every
// tap of the kernel rows in bounds is a real word (zero outside the image) and the inner loop has
// no edge test. Canonical weights (w AND NOT m = 0) make such a zero word contribute
// popcount((0 XOR w) AND m) = popcount(w), the same per-tap weight popcount the dense kernel
// subtracts; unlisted entries have w = 0 in all 8 channels, so the per-tap sum is unchanged.
// y = L_T - 2*pc with L_T = kept weights of the channel over the pixel's in-bounds taps, read
// from 2-D prefix sums over (kh, kw) (the in-bounds taps of a pixel form a rectangle).
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_avx2.h"

namespace onebit::kernels {
namespace {

constexpr int64_t kCB = 8;        // output channels per block / tile
constexpr int64_t kMaxWords = 31;  // u8 lanes: 31 words * 8 bits = 248 <= 255
constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0Full;
// Pixels per tile. Measured on Zen 3 (1 thread, all-kept and 40%-pruned masks, 56x56x64-64 and
// 14x14x256-256): P = 3 beats 2, 4, 5 and 6 by 0-30% (6 u8 accumulators + the 4 weight vectors
// of an entry stay in registers; partial entries read their mask as memory operands).
constexpr int kP = 3;

inline __m256i nibble_lut() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                          0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
}

struct ListGeo {
  const uint64_t* x;          // image n, nibble-split, columns zero-padded: [H][W + 2*pad][W64][lo, hi]
  const PreparedWeights* pw;  // list layout
  const int64_t* off_full;    // per full entry: split-word offset of its (kh, kw, wd) from the
  const int64_t* off_part;    //   receptive field's top-left (padded) pixel
  int64_t H, W, WP, W64, KH, KW, stride, pad;  // WP = W + 2*pad
};

// Popcount sums of P pixels (ow0 .. ow0+P-1 of row oh) x the 8 channels of block `blk` over the
// listed entries of kernel rows [kh0, kh1), then y = L_T - 2*pc into dots. Every tap of those
// rows is a real word of the column-padded input (zero outside the image); EDGE tiles subtract
// the zero taps' weight popcounts afterwards.
template <int P, bool EDGE>
void list_tile(const ListGeo& g, int64_t blk, int64_t oh, int64_t ow0, int64_t kh0, int64_t kh1,
               int32_t* dots, int64_t ld) {
  const __m256i lut = nibble_lut(), zero = _mm256_setzero_si256();
  const PreparedWeights& pw = *g.pw;
  int64_t kwv0[P], kwv1[P];  // valid kw range of each pixel
  // Split-word index of pixel 0's receptive-field origin in the padded input (its row may lie
  // outside the image: only rows [kh0, kh1) are read); pixel p is `pstride` words further.
  const int64_t base = 2 * ((oh * g.stride - g.pad) * g.WP + ow0 * g.stride) * g.W64;
  const int64_t pstride = 2 * g.stride * g.W64;
  for (int p = 0; p < P; ++p) {
    if (EDGE) {
      tap_range(ow0 + p, g.stride, g.pad, g.KW, g.W, kwv0[p], kwv1[p]);
    } else {
      kwv0[p] = 0;
      kwv1[p] = g.KW;
    }
  }
  __m256i a8[P][2], a64[P][2];
  for (int p = 0; p < P; ++p) a8[p][0] = a8[p][1] = a64[p][0] = a64[p][1] = zero;
  auto widen = [&]() __attribute__((always_inline)) {
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < 2; ++v) {
        a64[p][v] = _mm256_add_epi64(a64[p][v], _mm256_sad_epu8(a8[p][v], zero));
        a8[p][v] = zero;
      }
  };
  const uint64_t* x0 = g.x + base;
  const int64_t rs = blk * (g.KH + 1);
  // Full entries: popcount(x XOR w).
  {
    const int64_t e0 = pw.rows_full[rs + kh0], e1 = pw.rows_full[rs + kh1];
    const uint64_t* wbase = pw.wfull.get();
    for (int64_t c0 = e0; c0 < e1; c0 += kMaxWords) {
      const int64_t c1 = std::min(e1, c0 + kMaxWords);
      for (int64_t e = c0; e < c1; ++e) {
        const __m256i* wv = reinterpret_cast<const __m256i*>(wbase + e * 2 * kCB);
        const __m256i wl0 = _mm256_load_si256(wv), wl1 = _mm256_load_si256(wv + 1);
        const __m256i wh0 = _mm256_load_si256(wv + 2), wh1 = _mm256_load_si256(wv + 3);
        const uint64_t* xe = x0 + g.off_full[e];
        for (int p = 0; p < P; ++p) {
          const uint64_t* xs = xe + p * pstride;
          const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(xs[0]));
          const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(xs[1]));
          a8[p][0] = _mm256_add_epi8(a8[p][0], _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(xl, wl0)),
                                                               _mm256_shuffle_epi8(lut, _mm256_xor_si256(xh, wh0))));
          a8[p][1] = _mm256_add_epi8(a8[p][1], _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(xl, wl1)),
                                                               _mm256_shuffle_epi8(lut, _mm256_xor_si256(xh, wh1))));
        }
      }
      widen();
    }
  }
  // Partial entries: popcount((x XOR w) AND m).
  {
    const int64_t e0 = pw.rows_part[rs + kh0], e1 = pw.rows_part[rs + kh1];
    const uint64_t* wbase = pw.wpart.get();
    for (int64_t c0 = e0; c0 < e1; c0 += kMaxWords) {
      const int64_t c1 = std::min(e1, c0 + kMaxWords);
      for (int64_t e = c0; e < c1; ++e) {
        const __m256i* wv = reinterpret_cast<const __m256i*>(wbase + e * 4 * kCB);
        const __m256i wl0 = _mm256_load_si256(wv), wl1 = _mm256_load_si256(wv + 1);
        const __m256i wh0 = _mm256_load_si256(wv + 2), wh1 = _mm256_load_si256(wv + 3);
        const uint64_t* xe = x0 + g.off_part[e];
        for (int p = 0; p < P; ++p) {
          const uint64_t* xs = xe + p * pstride;
          const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(xs[0]));
          const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(xs[1]));
          const __m256i l0 = _mm256_and_si256(_mm256_xor_si256(xl, wl0), _mm256_load_si256(wv + 4));
          const __m256i l1 = _mm256_and_si256(_mm256_xor_si256(xl, wl1), _mm256_load_si256(wv + 5));
          const __m256i h0 = _mm256_and_si256(_mm256_xor_si256(xh, wh0), _mm256_load_si256(wv + 6));
          const __m256i h1 = _mm256_and_si256(_mm256_xor_si256(xh, wh1), _mm256_load_si256(wv + 7));
          a8[p][0] = _mm256_add_epi8(a8[p][0], _mm256_add_epi8(_mm256_shuffle_epi8(lut, l0), _mm256_shuffle_epi8(lut, h0)));
          a8[p][1] = _mm256_add_epi8(a8[p][1], _mm256_add_epi8(_mm256_shuffle_epi8(lut, l1), _mm256_shuffle_epi8(lut, h1)));
        }
      }
      widen();
    }
  }
  // pc <= K < 2^31: the low 32 bits of each u64 lane hold it exactly.
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
  const int64_t taps = g.KH * g.KW, sw = g.KW + 1;
  const int32_t* pcw = pw.pcw.data() + blk * taps * kCB;
  const int32_t* S = pw.kept_prefix.data() + blk * (g.KH + 1) * sw * kCB;
  auto ld8 = [](const int32_t* q) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)); };
  for (int p = 0; p < P; ++p) {
    const __m256i lo = _mm256_permutevar8x32_epi32(a64[p][0], idx);
    const __m256i hi = _mm256_permutevar8x32_epi32(a64[p][1], idx);
    __m256i pc = _mm256_permute2x128_si256(lo, hi, 0x20);
    if (EDGE)  // remove the zero-word taps: popcount((0 XOR w) AND m) = popcount(w)
      for (int64_t kh = kh0; kh < kh1; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw)
          if (kw < kwv0[p] || kw >= kwv1[p]) pc = _mm256_sub_epi32(pc, ld8(pcw + (kh * g.KW + kw) * kCB));
    // kept weights over taps [kh0, kh1) x [kwv0, kwv1)
    const __m256i kept = _mm256_add_epi32(
        _mm256_sub_epi32(ld8(S + (kh1 * sw + kwv1[p]) * kCB), ld8(S + (kh0 * sw + kwv1[p]) * kCB)),
        _mm256_sub_epi32(ld8(S + (kh0 * sw + kwv0[p]) * kCB), ld8(S + (kh1 * sw + kwv0[p]) * kCB)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + (ow0 + p) * ld), _mm256_sub_epi32(kept, _mm256_add_epi32(pc, pc)));
  }
}

template <int P>
inline void list_tile_any(bool edge, const ListGeo& g, int64_t blk, int64_t oh, int64_t ow0, int64_t kh0,
                          int64_t kh1, int32_t* d, int64_t ld) {
  if (edge)
    list_tile<P, true>(g, blk, oh, ow0, kh0, kh1, d, ld);
  else
    list_tile<P, false>(g, blk, oh, ow0, kh0, kh1, d, ld);
}

// Fills dots[ow*ld + (co - c0)] for co in [c0, round_up(c1, 8)) of output row oh.
void masked_row(const ListGeo& g, const BConvShape& s, int64_t oh, int64_t c0, int64_t c1, int32_t* dots,
                int64_t ld) {
  const int64_t OW = s.out_w();
  int64_t kh0, kh1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  // Interior columns [in0, in1): every kw in bounds (tiles there skip the edge logic).
  int64_t in0 = (s.pad + s.stride - 1) / s.stride;
  int64_t in1 = s.w + s.pad - s.kw >= 0 ? (s.w + s.pad - s.kw) / s.stride + 1 : 0;
  in0 = std::min(in0, OW);
  in1 = std::max(in0, std::min(in1, OW));
  // ceil(OW / kP) tiles of balanced sizes (7 pixels -> 3 + 2 + 2, not 3 + 3 + 1).
  const int64_t nt = (OW + kP - 1) / kP, base = OW / nt, extra = OW % nt;
  for (int64_t cb = c0; cb < c1; cb += kCB) {
    int32_t* d = dots + (cb - c0);
    const int64_t b = cb / kCB;
    for (int64_t i = 0, ow = 0; i < nt; ++i) {
      const int64_t size = base + (i < extra ? 1 : 0);
      const bool edge = ow < in0 || ow + size > in1;
      switch (size) {
        case 1: list_tile_any<1>(edge, g, b, oh, ow, kh0, kh1, d, ld); break;
        case 2: list_tile_any<2>(edge, g, b, oh, ow, kh0, kh1, d, ld); break;
        case 3: list_tile_any<3>(edge, g, b, oh, ow, kh0, kh1, d, ld); break;
        default: break;
      }
      ow += size;
    }
  }
}

struct AlignedWords {
  uint64_t* p = nullptr;
  size_t n = 0;
  uint64_t* get(size_t need) {
    if (need > n) {
      std::free(p);
      p = static_cast<uint64_t*>(std::aligned_alloc(64, round_up(static_cast<int64_t>(need), 8) * 8));
      if (!p) throw std::bad_alloc();
      n = need;
    }
    return p;
  }
  ~AlignedWords() { std::free(p); }
};

// Split-word offsets of every entry of one list in the column-padded input (width W + 2*pad).
void entry_offsets(const std::vector<int32_t>& ent, const BConvShape& s, std::vector<int64_t>& off) {
  const int64_t W64 = s.words(), WP = s.w + 2 * s.pad;
  off.resize(ent.size());
  for (size_t e = 0; e < ent.size(); ++e) {
    const int64_t tw = ent[e], wd = tw % W64, tap = tw / W64, kh = tap / s.kw, kw = tap % s.kw;
    off[e] = 2 * ((kh * WP + kw) * W64 + wd);
  }
}

}  // namespace

void prepare_masked_avx2(const uint64_t* w, const uint64_t* mask, const BConvShape& s, PreparedWeights& p,
                         int threads) {
  (void)threads;  // one pass over the weights; prepare runs once per layer
  const int64_t taps = s.kh * s.kw, W64 = s.words(), blocks = (s.cout + kCB - 1) / kCB;
  const int64_t last_bits = s.cin - (W64 - 1) * 64;
  const uint64_t last_full = last_bits == 64 ? ~uint64_t{0} : (uint64_t{1} << last_bits) - 1;
  p.masked = true;
  p.nwords = 0;
  p.ent_full.clear();
  p.ent_part.clear();
  p.rows_full.assign(static_cast<size_t>(blocks * (s.kh + 1)), 0);
  p.rows_part.assign(static_cast<size_t>(blocks * (s.kh + 1)), 0);
  p.pcw.assign(static_cast<size_t>(blocks * taps * kCB), 0);
  const int64_t sw = s.kw + 1;
  p.kept_prefix.assign(static_cast<size_t>(blocks * (s.kh + 1) * sw * kCB), 0);
  std::vector<uint64_t> full_words, part_words;
  for (int64_t b = 0; b < blocks; ++b) {
    int32_t* S = p.kept_prefix.data() + b * (s.kh + 1) * sw * kCB;
    for (int64_t kh = 0; kh < s.kh; ++kh) {
      p.rows_full[b * (s.kh + 1) + kh] = static_cast<int64_t>(p.ent_full.size());
      p.rows_part[b * (s.kh + 1) + kh] = static_cast<int64_t>(p.ent_part.size());
      for (int64_t kw = 0; kw < s.kw; ++kw) {
        const int64_t tap = kh * s.kw + kw;
        int32_t kept[kCB] = {};
        for (int64_t wd = 0; wd < W64; ++wd) {
          uint64_t wj[kCB], mj[kCB];
          bool any = false, full = true;
          const uint64_t fullm = wd == W64 - 1 ? last_full : ~uint64_t{0};
          for (int64_t j = 0; j < kCB; ++j) {
            const int64_t co = b * kCB + j;
            const bool real = co < s.cout;
            const int64_t i = (co * taps + tap) * W64 + wd;
            wj[j] = real ? w[i] : 0;
            mj[j] = real ? mask[i] : 0;
            any = any || mj[j] != 0;
            full = full && (!real || mj[j] == fullm);  // channels >= Cout are never written
            kept[j] += static_cast<int32_t>(_mm_popcnt_u64(mj[j]));
            p.pcw[(b * taps + tap) * kCB + j] += static_cast<int32_t>(_mm_popcnt_u64(wj[j]));
          }
          if (!any) continue;  // no kept weight in the block: the entry is skipped
          const int32_t tw = static_cast<int32_t>(tap * W64 + wd);
          std::vector<uint64_t>& dst = full ? full_words : part_words;
          (full ? p.ent_full : p.ent_part).push_back(tw);
          for (int64_t j = 0; j < kCB; ++j) dst.push_back(wj[j] & kLowNibbles);
          for (int64_t j = 0; j < kCB; ++j) dst.push_back((wj[j] >> 4) & kLowNibbles);
          if (!full) {
            for (int64_t j = 0; j < kCB; ++j) dst.push_back(mj[j] & kLowNibbles);
            for (int64_t j = 0; j < kCB; ++j) dst.push_back((mj[j] >> 4) & kLowNibbles);
          }
        }
        // 2-D prefix sums: S[kh+1][kw+1] = S[kh][kw+1] + S[kh+1][kw] - S[kh][kw] + kept(kh, kw)
        for (int64_t j = 0; j < kCB; ++j)
          S[((kh + 1) * sw + kw + 1) * kCB + j] = S[(kh * sw + kw + 1) * kCB + j] +
                                                  S[((kh + 1) * sw + kw) * kCB + j] -
                                                  S[(kh * sw + kw) * kCB + j] + kept[j];
      }
    }
    p.rows_full[b * (s.kh + 1) + s.kh] = static_cast<int64_t>(p.ent_full.size());
    p.rows_part[b * (s.kh + 1) + s.kh] = static_cast<int64_t>(p.ent_part.size());
  }
  auto store = [](const std::vector<uint64_t>& v) {
    auto sp = aligned_words(v.size());
    std::copy(v.begin(), v.end(), sp.get());
    return sp;
  };
  p.wfull = store(full_words);
  p.wpart = store(part_words);
}

void bconv_masked_avx2(const BConvArgs& a, int threads) {
  const BConvShape& s = a.s;
  const PreparedWeights* pw = a.prepared;
  std::shared_ptr<PreparedWeights> local;  // unprepared call: build the list layout now
  if (!pw) {
    local = std::make_shared<PreparedWeights>();
    prepare_masked_avx2(a.w, a.weight_mask, s, *local, threads);
    pw = local.get();
  }
  const int64_t W64 = s.words();
  static thread_local AlignedWords xbuf;
  static thread_local std::vector<int64_t> off_full, off_part;
  entry_offsets(pw->ent_full, s, off_full);
  entry_offsets(pw->ent_part, s, off_part);
  // Nibble-split input with `pad` zero pixels left and right of every row, one pass.
  const int64_t WP = s.w + 2 * s.pad, rows = s.n * s.h, prow = 2 * WP * W64;
  uint64_t* xs = xbuf.get(static_cast<size_t>(rows * prow));
  parallel_for(rows, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      uint64_t* d = xs + r * prow;
      const uint64_t* src = a.x + r * s.w * W64;
      std::fill(d, d + 2 * s.pad * W64, uint64_t{0});
      for (int64_t i = 0; i < s.w * W64; ++i) {
        d[2 * (s.pad * W64 + i)] = src[i] & kLowNibbles;
        d[2 * (s.pad * W64 + i) + 1] = (src[i] >> 4) & kLowNibbles;
      }
      std::fill(d + 2 * (s.pad + s.w) * W64, d + prow, uint64_t{0});
    }
  });
  const StagePrep sp = prepare_stage(a.stage, s.cout, s.k_bits());
  const TaskSplit split = split_tasks(s, threads);
  const int64_t OH = s.out_h(), OW = s.out_w(), ld = round_up(split.chunk, kCB);
  const int64_t* offf = off_full.data();
  const int64_t* offp = off_part.data();
  parallel_for(split.tasks(), threads, [&](int64_t t0, int64_t t1) {
    static thread_local std::vector<int32_t> dots;
    dots.resize(static_cast<size_t>(OW * ld));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = t / split.chunks, ci = t % split.chunks;
      const int64_t n = row / OH, oh = row % OH;
      const int64_t c0 = ci * split.chunk, c1 = std::min(s.cout, c0 + split.chunk);
      const ListGeo g{xs + n * s.h * prow, pw, offf, offp, s.h, s.w, WP, W64, s.kh, s.kw, s.stride, s.pad};
      masked_row(g, s, oh, c0, c1, dots.data(), ld);
      write_stage_avx2(a.stage, sp, dots.data(), ld, OW, row * OW, c0, c1, s.cout, a.out);
    }
  });
}

}  // namespace onebit::kernels
