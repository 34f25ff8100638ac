// AVX2 masked (pruned) binary direct convolution: the "list kernel". Also runs ISA avx512 with a
// mask (AVX-512 CPUs have AVX2; there is no AVX-512 masked kernel).
//
// Same popcount and blocking as the dense AVX2 kernel (bconv_avx2.cpp): nibble pre-split
// operands and the pshufb LUT, register tiles of P output pixels x 8 (or 16) output channels, u8
// lanes widened (psadbw) at least every 31 words, zero words for out-of-bounds taps with a weight
// popcount correction. What differs: per 8-output-channel block (or pair of blocks, a "group"),
// the kernel does not walk every (kh, kw, word) of the kernel but a compact LIST of the active
// ones, built once in prepare (bconv_masked.cpp, layout in bconv.h):
// - an entry whose mask word is 0 for all 8 channels of the block is left out: word- and
//   block-structured pruning skip that work entirely;
// - a "full" entry (all 8 channels keep every real bit of the word) runs the dense inner loop:
//   popcount(x XOR w), no mask needed (x and w padding bits are 0);
// - a "partial" entry ANDs the nibble-split mask: popcount((x XOR w) AND m) per byte =
//   LUT[(xl ^ wl) & ml] + LUT[(xh ^ wh) & mh] (2 more ops per pixel and 4 channels: 8, not 6).
// The input is nibble-split once per call into rows with `pad` zero pixels before and `pad_end`
// after them, so every
// tap of the kernel rows in bounds is a real word (zero outside the image) and the inner loop has
// no edge test. Canonical weights (w AND NOT m = 0) make such a zero word contribute
// popcount((0 XOR w) AND m) = popcount(w), the same per-tap weight popcount the dense kernel
// subtracts; unlisted entries have w = 0 in all 8 channels, so the per-tap sum is unchanged.
// y = L_T - 2*pc with L_T = kept weights of the channel over the pixel's in-bounds taps: per row
// for interior pixels, from 2-D prefix sums over (kh, kw) for edge pixels (whose in-bounds taps
// form a rectangle). Docs: docs/kernels.md "Masked (pruned) binary layers".
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <type_traits>

#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_avx2.h"

namespace onebit::kernels {
namespace {

constexpr int64_t kCB = 8;        // output channels per block / tile
constexpr int64_t kMaxWords = 31;  // u8 lanes: 31 words * 8 bits = 248 <= 255
constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0Full;
// Pixels per tile, measured on Zen 3 (1 thread; 56x56x64, 28x28x128, 14x14x256, 16x16x256,
// 7x7x512 with all-kept, unstructured and block masks): 4 for 8-channel groups (8 u8
// accumulators, the entry's 4 weight vectors and the LUT fit the 16 ymm; 5-8% faster than 3 on
// block-pruned 56x56x64 and 28x28x128, the same elsewhere), 2 for 16-channel groups (3 spilled).
constexpr int kP = 4;
constexpr int kP2 = 2;

inline __m256i nibble_lut() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                          0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
}

struct ListGeo {
  const uint64_t* x;          // image n, nibble-split, columns zero-padded: [H][WP][W64][lo, hi]
  const PreparedWeights* pw;  // list layout
  const int64_t* off_full;    // per full entry: split-word offset of its (kh, kw, wd) from the
  const int64_t* off_part;    //   receptive field's top-left (padded) pixel
  int64_t H, W, WP, W64, KH, KW, stride, pad;  // WP = pad + W + pad_end
};

// Final step of a tile: y = kept - 2*pc per channel (pc in the low 32 bits of u64 lanes; pc <= K
// < 2^31). s0, s1: u64 popcount sums of channels 0-3 and 4-7 of one block.
inline __m256i dots8(__m256i s0, __m256i s1, __m256i kept) {
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
  const __m256i pc = _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(s0, idx),
                                               _mm256_permutevar8x32_epi32(s1, idx), 0x20);
  return _mm256_sub_epi32(kept, _mm256_add_epi32(pc, pc));
}

// Where a tile's sums go after its last run of entries: `dots` == nullptr: into the u64 sums
// a64 (edge tiles, corrected afterwards); otherwise y = kept - 2*pc straight into dots
// (interior tiles: every pixel has the same kept count, kept[b*8 + j]).
struct TileOut {
  int32_t* dots = nullptr;
  int64_t ld = 0;
  const int32_t* kept = nullptr;
};

// Popcounts of `n` <= 31 consecutive list entries for P pixels x 8*NB channels, added to the u64
// sums a64 (which hold the earlier runs unless `first`); the last run of a tile writes `out`.
// The u8 accumulators live only here (no u8 lane exceeds 31 * 8 = 248), so the compiler keeps
// them, the LUT and the entry's weights in the 16 ymm (with the loop inside the tile function
// GCC spilled accumulators in the entry loop).
// Full entries (PART = false): per block [lo 8 | hi 8] weight words, popcount(x XOR w);
// partial entries: per block [w lo 8 | w hi 8 | m lo 8 | m hi 8], popcount((x XOR w) AND m).
// Words per block and entry: full [w lo 8 | w hi 8], partial + [m lo 8 | m hi 8] (SW: words
// stored nibble-split); raw: [w 8] / [w 8 | m 8], split in registers.
constexpr int64_t entry_words(bool part, bool sw) { return (part ? 2 : 1) * (sw ? 2 : 1) * kCB; }

template <int P, int NB, bool PART, bool SW>
__attribute__((noinline)) void run_entries(const uint64_t* x0, int64_t pstride, const int64_t* off,
                                           const uint64_t* w, int64_t n, uint64_t (*a64)[2 * NB][4], bool first,
                                           bool last, const TileOut& out) {
  constexpr int V = 2 * NB, EW = static_cast<int>(entry_words(PART, SW));  // accumulators per pixel, words
  const __m256i lut = nibble_lut(), zero = _mm256_setzero_si256();
  __m256i a8[P][V];
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < V; ++v) a8[p][v] = zero;
  for (int64_t e = 0; e < n; ++e) {
    const __m256i* we = reinterpret_cast<const __m256i*>(w + e * NB * EW);
    // The entry's split weight (and mask) vectors [w lo 0-3, 4-7 | w hi | m lo | m hi], once per entry.
    __m256i wr[NB][PART ? 8 : 4];
    for (int b = 0; b < NB; ++b) {
      if (SW) {
        for (int i = 0; i < (PART ? 8 : 4); ++i) wr[b][i] = _mm256_load_si256(we + b * (EW / 4) + i);
      } else {
        const __m256i low = _mm256_set1_epi8(0x0F);
        for (int q = 0; q < (PART ? 2 : 1); ++q)
          for (int v = 0; v < 2; ++v) {
            const __m256i raw = _mm256_load_si256(we + b * (EW / 4) + 2 * q + v);
            wr[b][4 * q + v] = _mm256_and_si256(raw, low);
            wr[b][4 * q + 2 + v] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
          }
      }
    }
    const uint64_t* xe = x0 + off[e];
    for (int p = 0; p < P; ++p) {
      const uint64_t* xs = xe + p * pstride;
      const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(xs[0]));
      const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(xs[1]));
      for (int b = 0; b < NB; ++b) {
        for (int v = 0; v < 2; ++v) {
          __m256i l = _mm256_xor_si256(xl, wr[b][v]);
          __m256i h = _mm256_xor_si256(xh, wr[b][2 + v]);
          if (PART) {
            l = _mm256_and_si256(l, wr[b][4 + v]);
            h = _mm256_and_si256(h, wr[b][6 + v]);
          }
          a8[p][2 * b + v] = _mm256_add_epi8(a8[p][2 * b + v],
                                             _mm256_add_epi8(_mm256_shuffle_epi8(lut, l), _mm256_shuffle_epi8(lut, h)));
        }
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int b = 0; b < NB; ++b) {
      __m256i sum[2];
      for (int v = 0; v < 2; ++v) {
        sum[v] = _mm256_sad_epu8(a8[p][2 * b + v], zero);
        if (!first) sum[v] = _mm256_add_epi64(sum[v], _mm256_load_si256(reinterpret_cast<const __m256i*>(a64[p][2 * b + v])));
      }
      if (last && out.dots) {
        const __m256i kept = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out.kept + b * kCB));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.dots + p * out.ld + b * kCB), dots8(sum[0], sum[1], kept));
      } else {
        for (int v = 0; v < 2; ++v) _mm256_store_si256(reinterpret_cast<__m256i*>(a64[p][2 * b + v]), sum[v]);
      }
    }
}

// What the tiles of one output row and one group share: their entry ranges (kernel rows
// [kh0, kh1)), weight pointers and per-channel constants.
template <int NB>
struct RowPlan {
  int64_t grp, kh0, kh1;
  const int64_t *off_full, *off_part;  // entry offsets from the first entry in range
  const uint64_t *w_full, *w_part;     // weights of the first entry in range
  int64_t n_full, n_part, runs;        // entries in range; runs of <= 31 entries
  alignas(32) int32_t kept[NB * kCB];  // interior pixels: kept weights over the rows, all kw
  alignas(32) int32_t pw2[NB * kCB];   // 2 * weight popcount over the rows, all kw
};

// Popcount sums of P pixels (ow0 .. ow0+P-1 of row oh) x the 8*NB channels of the plan's group
// over its listed entries, then y into dots. Every tap of the rows in range is a real word of the
// column-padded input (zero outside the image). Interior tiles (EDGE = false) write
// y = kept - 2*pc in their last run; edge tiles read each pixel's in-bounds rectangle of taps
// [kh0, kh1) x [kw0, kw1): y = DK(rect) + 2*PW(rows) - 2*pc, because the zero words of the other
// taps added popcount((0 XOR w) AND m) = popcount(w) to pc (DK = kept - 2*popcount(w) per tap).
template <int P, int NB, bool SW, bool EDGE>
void list_tile(const ListGeo& g, const RowPlan<NB>& rp, int64_t oh, int64_t ow0, int32_t* dots, int64_t ld) {
  // Split-word index of pixel 0's receptive-field origin in the padded input (its row may lie
  // outside the image: only rows [kh0, kh1) are read); pixel p is `pstride` words further.
  const int64_t base = 2 * ((oh * g.stride - g.pad) * g.WP + ow0 * g.stride) * g.W64;
  const int64_t pstride = 2 * g.stride * g.W64;
  const uint64_t* x0 = g.x + base;
  alignas(32) uint64_t a64[P][2 * NB][4];  // u64 sums between runs (memory: see run_entries)
  TileOut out;
  if (!EDGE) out = TileOut{dots + ow0 * ld, ld, rp.kept};
  int64_t r = 0;
  for (int64_t c0 = 0; c0 < rp.n_full; c0 += kMaxWords, ++r)  // popcount(x XOR w)
    run_entries<P, NB, false, SW>(x0, pstride, rp.off_full + c0, rp.w_full + c0 * NB * entry_words(false, SW),
                              std::min(rp.n_full - c0, int64_t{kMaxWords}), a64, r == 0, r == rp.runs - 1, out);
  for (int64_t c0 = 0; c0 < rp.n_part; c0 += kMaxWords, ++r)  // popcount((x XOR w) AND m)
    run_entries<P, NB, true, SW>(x0, pstride, rp.off_part + c0, rp.w_part + c0 * NB * entry_words(true, SW),
                             std::min(rp.n_part - c0, int64_t{kMaxWords}), a64, r == 0, r == rp.runs - 1, out);
  if (!EDGE && rp.runs > 0) return;
  if (rp.runs == 0) std::fill(&a64[0][0][0], &a64[0][0][0] + P * 2 * NB * 4, uint64_t{0});  // no entry at all
  const PreparedWeights& pw = *g.pw;
  const int64_t sw = g.KW + 1, kh0 = rp.kh0, kh1 = rp.kh1;
  auto ld8 = [](const int32_t* q) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)); };
  for (int p = 0; p < P; ++p) {
    int64_t kw0 = 0, kw1 = g.KW;  // valid kw range of the pixel
    if (EDGE) tap_range(ow0 + p, g.stride, g.pad, g.KW, g.W, kw0, kw1);
    for (int b = 0; b < NB; ++b) {
      const int32_t* S = pw.dk_prefix.data() + (pw.groups[2 * rp.grp] + b) * (g.KH + 1) * sw * kCB;
      const __m256i dk = _mm256_add_epi32(_mm256_sub_epi32(ld8(S + (kh1 * sw + kw1) * kCB), ld8(S + (kh0 * sw + kw1) * kCB)),
                                          _mm256_sub_epi32(ld8(S + (kh0 * sw + kw0) * kCB), ld8(S + (kh1 * sw + kw0) * kCB)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + (ow0 + p) * ld + b * kCB),
                          dots8(_mm256_load_si256(reinterpret_cast<const __m256i*>(a64[p][2 * b])),
                                _mm256_load_si256(reinterpret_cast<const __m256i*>(a64[p][2 * b + 1])),
                                _mm256_add_epi32(dk, ld8(rp.pw2 + b * kCB))));
    }
  }
}

// One output row of one group in balanced tiles of at most PM pixels (PM = 3: 7 -> 3 + 2 + 2).
template <int PM, int NB, bool SW>
void group_row(const ListGeo& g, int64_t grp, int64_t oh, int64_t OW, int64_t in0, int64_t in1, int64_t kh0,
               int64_t kh1, int32_t* d, int64_t ld) {
  const PreparedWeights& pw = *g.pw;
  RowPlan<NB> rp;
  rp.grp = grp;
  rp.kh0 = kh0;
  rp.kh1 = kh1;
  const int64_t rs = grp * (g.KH + 1);
  const int64_t f0 = pw.rows_full[rs + kh0], p0 = pw.rows_part[rs + kh0];
  rp.n_full = pw.rows_full[rs + kh1] - f0;
  rp.n_part = pw.rows_part[rs + kh1] - p0;
  rp.runs = (rp.n_full + kMaxWords - 1) / kMaxWords + (rp.n_part + kMaxWords - 1) / kMaxWords;
  rp.off_full = g.off_full + f0;
  rp.off_part = g.off_part + p0;
  rp.w_full = pw.wfull.get() + pw.wfull_at[grp] + (f0 - pw.rows_full[rs]) * NB * entry_words(false, SW);
  rp.w_part = pw.wpart.get() + pw.wpart_at[grp] + (p0 - pw.rows_part[rs]) * NB * entry_words(true, SW);
  const int64_t sw = g.KW + 1;
  for (int b = 0; b < NB; ++b) {
    const int64_t o = (pw.groups[2 * grp] + b) * (g.KH + 1) * sw * kCB;
    const int32_t *D = pw.dk_prefix.data() + o, *Q = pw.pw_prefix.data() + o;
    for (int64_t j = 0; j < kCB; ++j) {
      const int64_t hi = (kh1 * sw + g.KW) * kCB + j, lo = (kh0 * sw + g.KW) * kCB + j;
      rp.pw2[b * kCB + j] = 2 * (Q[hi] - Q[lo]);
      rp.kept[b * kCB + j] = D[hi] - D[lo] + rp.pw2[b * kCB + j];
    }
  }
  const int64_t nt = (OW + PM - 1) / PM, base = OW / nt, extra = OW % nt;
  for (int64_t i = 0, ow = 0; i < nt; ++i) {
    const int64_t size = base + (i < extra ? 1 : 0);
    const bool edge = ow < in0 || ow + size > in1;
#define ONEBIT_TILE(P) \
  (edge ? list_tile<P, NB, SW, true>(g, rp, oh, ow, d, ld) : list_tile<P, NB, SW, false>(g, rp, oh, ow, d, ld))
    switch (size) {
      case 1: ONEBIT_TILE(1); break;
      case 2: if constexpr (PM >= 2) ONEBIT_TILE(2); break;
      case 3: if constexpr (PM >= 3) ONEBIT_TILE(3); break;
      case 4: if constexpr (PM >= 4) ONEBIT_TILE(4); break;
      default: break;
    }
#undef ONEBIT_TILE
    ow += size;
  }
}

// Fills dots[ow*ld + (co - c0)] for co in [c0, round_up(c1, 8)) of output row oh.
void masked_row(const ListGeo& g, const BConvShape& s, int64_t oh, int64_t c0, int64_t c1, int32_t* dots,
                int64_t ld) {
  const int64_t OW = s.out_w();
  int64_t kh0, kh1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  // Interior columns [in0, in1): every kw in bounds (tiles there skip the edge logic).
  int64_t in0, in1;
  interior_columns(s, in0, in1);
  const PreparedWeights& pw = *g.pw;
  for (int64_t cb = c0; cb < c1;) {  // groups never straddle c0 (a multiple of 64 channels)
    const int64_t grp = pw.block_group[cb / kCB], nb = pw.groups[2 * grp + 1];
    int32_t* d = dots + (cb - c0);
    const bool sw = pw.split_words;
    if (nb == 2)
      (sw ? group_row<kP2, 2, true> : group_row<kP2, 2, false>)(g, grp, oh, OW, in0, in1, kh0, kh1, d, ld);
    else
      (sw ? group_row<kP, 1, true> : group_row<kP, 1, false>)(g, grp, oh, OW, in0, in1, kh0, kh1, d, ld);
    cb += nb * kCB;
  }
}

// Split-word offsets of every entry of one list in the column-padded input (width pad + W + pad_end).
const int64_t* entry_offsets(const int64_t* ent, size_t count, const BConvShape& s, Scratch<int64_t>& buf) {
  const int64_t row = 2 * (s.w + s.pad + s.pad_end) * s.words();  // split words per padded input row
  int64_t* off = buf.get(count);
  for (size_t e = 0; e < count; ++e) off[e] = (ent[e] >> 32) * row + 2 * (ent[e] & 0xFFFFFFFF);
  return off;
}

}  // namespace

void bconv_masked_avx2(const BConvArgs& a, int threads) {
  BConvShape s = a.s;
  if (s.kh == 1 && s.kw == 1 && s.h == 1 && s.w == 1 && s.n > 1) {
    // A dense layer (1x1 kernel on 1x1 images) over a batch is the same computation as one
    // 1 x N image (same memory layout in and out): the batch items then share weight loads as
    // the pixels of a tile instead of streaming the weights once per item.
    s.w = s.n;
    s.n = 1;
    s.stride = 1;  // any stride gives 1x1 outputs of 1x1 images
  }
  const PreparedWeights* pw = a.prepared;  // the dispatcher builds it for unprepared calls
  const int64_t W64 = s.words();
  static thread_local Scratch<uint64_t> xbuf;
  static thread_local Scratch<int64_t> off_full, off_part;
  const int64_t* offf = entry_offsets(pw->ent_full.data(), pw->ent_full.size(), s, off_full);
  const int64_t* offp = entry_offsets(pw->ent_part.data(), pw->ent_part.size(), s, off_part);
  // Nibble-split input with `pad` zero pixels left and `pad_end` right of every row, one pass.
  const int64_t WP = s.w + s.pad + s.pad_end, rows = s.n * s.h, prow = 2 * WP * W64;
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
  parallel_for(split.tasks(), threads, [&](int64_t t0, int64_t t1) {
    static thread_local Scratch<int32_t> dbuf;
    int32_t* dots = dbuf.get(static_cast<size_t>(OW * ld));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = t / split.chunks, ci = t % split.chunks;
      const int64_t n = row / OH, oh = row % OH;
      const int64_t c0 = ci * split.chunk, c1 = std::min(s.cout, c0 + split.chunk);
      const ListGeo g{xs + n * s.h * prow, pw, offf, offp, s.h, s.w, WP, W64, s.kh, s.kw, s.stride, s.pad};
      masked_row(g, s, oh, c0, c1, dots, ld);
      write_stage_avx2(a.stage, sp, dots, ld, OW, row * OW, c0, c1, s.cout, a.out);
      apply_stage_tail(a.stage, OW, row * OW, c0, c1, s.cout, a.out);
    }
  });
}

}  // namespace onebit::kernels
