// AVX2 binary direct convolution. AVX2 has no vector popcount, so popcounts use the nibble
// lookup (pshufb) method of Mula et al.: per byte, LUT[lo nibble] + LUT[hi nibble].
//
// Nibble pre-split: popcount(x XOR w) per byte = LUT[xl ^ wl] + LUT[xh ^ wh] with
// xl = x & 0x0F.., xh = (x >> 4) & 0x0F.. (per byte). Both operands are split once (input: one
// pass per call; weights: in prepare_weights), so the inner loop needs 2 XOR + 2 pshufb + 2 byte
// adds per 4 words instead of XOR + shift + 2 AND + 2 pshufb + 2 adds (6 ops, not 8).
//
// Zero-padded input: the split pass writes each input row with `pad` zero pixels before it and
// `pad_end` after it,
// so every tap of every output pixel is a real memory word and the KW taps of a kernel row are
// KW*W64 contiguous words (one straight run, the same for every pixel of a tile, edge pixels
// included). A zero word contributes popcount(0 XOR w) = popcount(w); that is subtracted again
// for the few edge pixels afterwards (per-tap weight popcounts from prepare), so TRUE-ZERO
// padding stays exact. Kernel rows outside the input are skipped (per output row).
//
// Register blocking: a tile is P output pixels (same output row) x 8*NB output channels
// (2*NB ymm of 4 channels; weights split into lo/hi nibble halves: 4*NB weight ymm per word).
// Lanes are uint8 and gain <= 8 per word, so they are folded (psadbw -> u64 per channel) before
// 31 words accumulate (the "narrow lanes with periodic widening" accumulator, exact for any K).
//
// Work split: one task = a band of output rows x a chunk of 64 output channels; inside a task the
// loop over 8-channel blocks is outside the loop over rows, so a block's weights stay in L1
// while the band's rows use them (matters when the weights do not fit in L2, e.g. 512x3x3x512).
//
// Weights are re-laid out once (prepare_weights) as [Cout/8][KH][KW][W64][lo 8 | hi 8] so a tap
// word's 8 channels are 4 adjacent ymm; the per-tap weight popcounts [Cout/8][KH*KW][8] (int32)
// follow the weights in the same allocation.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_avx2.h"

namespace onebit::kernels {
namespace {

constexpr int64_t kCB = 8;  // output channels per block
constexpr int kMaxWords = 31;  // uint8 lanes: 31 words * 8 bits = 248 <= 255
constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0Full;
constexpr int64_t kChunk = 64;  // output channels per task (packed output words never straddle)

inline __m256i popcnt_bytes(__m256i v, __m256i lut, __m256i low) {
  const __m256i lo = _mm256_and_si256(v, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

inline __m256i nibble_lut() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                          0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
}

// 1x1 kernels (dense layers, pointwise convs) have their own path and layout (pointwise()).
inline bool is_pointwise(const BConvShape& s) { return s.kh == 1 && s.kw == 1; }

// Words of the prepared layout: the split weights, then the int32 per-tap popcounts
// (pointwise: the unsplit weights only).
inline int64_t weight_words(const BConvShape& s) {
  return (s.cout + kCB - 1) / kCB * kCB * s.kh * s.kw * s.words() * (is_pointwise(s) ? 1 : 2);
}
inline int64_t prepared_words(const BConvShape& s) {
  if (is_pointwise(s)) return weight_words(s);
  return weight_words(s) + ((s.cout + kCB - 1) / kCB * kCB * s.kh * s.kw + 1) / 2;
}

// One tile: P pixels x 8*NB channels over `rows` kernel rows of `run` words each (RUN when > 0).
// x: split padded input at pixel 0's first tap (kw = 0) of the first kernel row; pixel p at
//    x + p*ps, kernel row r at x + r*rs. Word j of a run is the pair x[2j], x[2j+1] (lo, hi).
// w: the block's weights at the first kernel row, word j at w + 16*j, kernel row r at w + r*wrs,
//    the second block (NB = 2) at w + bs.
// Writes y = tc - 2*pc (tc = rows*KW*Cin) to dots[p*ld + c], as if every kw tap were in bounds.
template <int P, int NB, int RUN>
inline void tile(const uint64_t* x, int64_t ps, int64_t rs, const uint64_t* w, int64_t wrs, int64_t bs,
                 int64_t rows, int64_t run_rt, int32_t tc, int32_t* dots, int64_t ld) {
  constexpr int V = 2 * NB;
  const int64_t run = RUN > 0 ? RUN : run_rt;
  const __m256i lut = nibble_lut(), zero = _mm256_setzero_si256();
  __m256i a8[P][V];
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < V; ++v) a8[p][v] = zero;
  // Folded sums live in memory: they are touched once per <= 31 words, and keeping them in
  // registers would push the u8 accumulators out of the 16 ymm.
  alignas(32) uint64_t a64[P][V][4];
  bool folded = false;
  auto fold = [&]() __attribute__((always_inline)) {
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < V; ++v) {
        __m256i s = _mm256_sad_epu8(a8[p][v], zero);
        __m256i* d = reinterpret_cast<__m256i*>(a64[p][v]);
        _mm256_store_si256(d, folded ? _mm256_add_epi64(_mm256_load_si256(d), s) : s);
        a8[p][v] = zero;
      }
    folded = true;
  };
  auto word = [&](const uint64_t* xw, const uint64_t* ww) __attribute__((always_inline)) {
    const __m256i* wv[NB];
    for (int b = 0; b < NB; ++b) wv[b] = reinterpret_cast<const __m256i*>(ww + b * bs);
    for (int p = 0; p < P; ++p) {
      const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(xw[p * ps]));
      const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(xw[p * ps + 1]));
      for (int v = 0; v < V; ++v) {
        const __m256i* wl = wv[v / 2] + (v % 2), *wh = wl + 2;
        // (Weights as forced memory operands of the XOR, to free registers for more pixels,
        // measured slower: 1.0-1.35x on the CIFAR layers.)
        const __m256i tl = _mm256_xor_si256(xl, _mm256_load_si256(wl));
        const __m256i th = _mm256_xor_si256(xh, _mm256_load_si256(wh));
        a8[p][v] = _mm256_add_epi8(a8[p][v], _mm256_add_epi8(_mm256_shuffle_epi8(lut, tl), _mm256_shuffle_epi8(lut, th)));
        // Opaque to the optimizer: without this GCC reassociates the byte adds of an unrolled
        // run into a tree, keeps every partial popcount live and spills them (measured 1.2-2.4x slower).
        asm("" : "+x"(a8[p][v]));
      }
    }
  };
  int64_t since = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const uint64_t* xr = x + r * rs;
    const uint64_t* wr = w + r * wrs;
    if constexpr (RUN > 0 && RUN <= kMaxWords) {
      if (since + RUN > kMaxWords) {
        fold();
        since = 0;
      }
      since += RUN;
      // Short runs (<= 9 words) fully unrolled; longer ones 4 words per iteration, or 3 where the
      // run is not a multiple of 4 (15, 18, 21: W64 5, 6, 7). Full unrolling of 24-word runs made
      // tiles of 3 and 4 pixels ~15 KiB of code each: together they overflow the instruction
      // cache, measured 25% slower on 7x7x512; unrolling one tap (W64 words) or the whole run of
      // W64 5, 6, 7 measured no faster than 3 (up to 1.3x slower on 8x8x448).
      constexpr int U = RUN <= 9 ? RUN : (RUN % 4 == 0 ? 4 : 3);
      static_assert(RUN % U == 0, "run length must be a multiple of the unroll factor");
      for (int j0 = 0; j0 < RUN; j0 += U) {
#pragma GCC unroll 8
        for (int j = j0; j < j0 + U; ++j) word(xr + 2 * j, wr + 16 * j);
      }
    } else {
      // Run-time run length (kernels not 3 wide, or more than 8 words per tap): 4 words per
      // step, unrolled, then single words (one word per step, same 4 x 8 tile: up to 1.2x slower
      // on 7x7x576-512, 4x4x1024-1024, 8x8x640-384).
      int64_t j = 0;
      for (; j + 4 <= run; j += 4) {
        if (since + 4 > kMaxWords) {
          fold();
          since = 0;
        }
        since += 4;
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) word(xr + 2 * (j + u), wr + 16 * (j + u));
      }
      for (; j < run; ++j) {
        if (since == kMaxWords) {
          fold();
          since = 0;
        }
        ++since;
        word(xr + 2 * j, wr + 16 * j);
      }
    }
  }
  // pc <= K < 2^31, so the low 32 bits of each u64 lane hold it exactly.
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
  const __m256i tcv = _mm256_set1_epi32(tc);
  for (int p = 0; p < P; ++p)
    for (int b = 0; b < NB; ++b) {
      __m256i s0 = _mm256_sad_epu8(a8[p][2 * b], zero), s1 = _mm256_sad_epu8(a8[p][2 * b + 1], zero);
      if (folded) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256(reinterpret_cast<const __m256i*>(a64[p][2 * b])));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256(reinterpret_cast<const __m256i*>(a64[p][2 * b + 1])));
      }
      const __m256i pc = _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(s0, idx),
                                                   _mm256_permutevar8x32_epi32(s1, idx), 0x20);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + p * ld + b * kCB),
                          _mm256_sub_epi32(tcv, _mm256_add_epi32(pc, pc)));
    }
}

// Geometry of one call, shared by its tasks.
struct Ctx {
  const uint64_t* xs;   // split padded input [N][H][WP][W64][2]
  const uint64_t* wt;   // prepared weights
  const int32_t* pcw;   // [Cout/8][KH*KW][8] weight popcount per tap
  BConvShape s;
  int64_t W64, WP, OH, OW, in0, in1;  // [in0, in1): output columns with every kw in bounds
};

// Tiles of one output row for the 8*NB channels of blocks blk.. (P: largest tile).
template <int P, int NB, int RUN>
void row_tiles(const Ctx& c, int64_t blk, int64_t n, int64_t oh, int32_t* d, int64_t ld) {
  const BConvShape& s = c.s;
  int64_t kh0, kh1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  const int64_t rows = kh1 - kh0, W2 = 2 * c.W64, run = s.kw * c.W64;
  const int64_t rs = c.WP * W2, ps = s.stride * W2, wrs = 16 * run, bs = s.kh * wrs;
  const uint64_t* x = c.xs + ((n * s.h + oh * s.stride - s.pad + kh0) * c.WP) * W2;
  const uint64_t* w = c.wt + blk * bs + kh0 * wrs;
  const int32_t tc = static_cast<int32_t>(rows * s.kw * s.cin);
  // ceil(OW / P) tiles of balanced sizes (7 pixels -> 4 + 3, not 6 + 1).
  const int64_t nt = (c.OW + P - 1) / P, base = c.OW / nt, extra = c.OW % nt;
  for (int64_t i = 0, ow = 0; i < nt; ++i) {
    const int64_t size = base + (i < extra ? 1 : 0);
    const uint64_t* xt = x + ow * ps;
    int32_t* dt = d + ow * ld;
    switch (size) {
      case 1: tile<1, NB, RUN>(xt, ps, rs, w, wrs, bs, rows, run, tc, dt, ld); break;
      case 2: if constexpr (P >= 2) tile<2, NB, RUN>(xt, ps, rs, w, wrs, bs, rows, run, tc, dt, ld); break;
      case 3: if constexpr (P >= 3) tile<3, NB, RUN>(xt, ps, rs, w, wrs, bs, rows, run, tc, dt, ld); break;
      case 4: if constexpr (P >= 4) tile<4, NB, RUN>(xt, ps, rs, w, wrs, bs, rows, run, tc, dt, ld); break;
      case 5: if constexpr (P >= 5) tile<5, NB, RUN>(xt, ps, rs, w, wrs, bs, rows, run, tc, dt, ld); break;
      case 6: if constexpr (P >= 6) tile<6, NB, RUN>(xt, ps, rs, w, wrs, bs, rows, run, tc, dt, ld); break;
      default: break;
    }
    ow += size;
  }
  // Edge pixels read zero words for their out-of-bounds kw taps: popcount(0 XOR w) = popcount(w)
  // entered pc, so y += 2*sum(pcw of those taps) - rows*(#such kw)*Cin makes them exact.
  for (int64_t ow = 0; ow < c.OW; ++ow) {
    if (ow == c.in0 && c.in1 > c.in0) ow = c.in1;
    if (ow >= c.OW) break;
    int64_t kw0, kw1;
    tap_range(ow, s.stride, s.pad, s.kw, s.w, kw0, kw1);
    const int64_t oob = s.kw - (kw1 - kw0);
    for (int b = 0; b < NB; ++b) {
      const int32_t* pcw = c.pcw + (blk + b) * s.kh * s.kw * kCB;
      __m256i corr = _mm256_setzero_si256();
      for (int64_t kw = 0; kw < s.kw; ++kw) {
        if (kw == kw0) kw = kw1;  // only the out-of-bounds taps
        if (kw >= s.kw) break;
        for (int64_t kh = kh0; kh < kh1; ++kh)
          corr = _mm256_add_epi32(corr, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pcw + (kh * s.kw + kw) * kCB)));
      }
      __m256i* yp = reinterpret_cast<__m256i*>(d + ow * ld + b * kCB);
      const __m256i fix = _mm256_sub_epi32(_mm256_add_epi32(corr, corr),
                                           _mm256_set1_epi32(static_cast<int32_t>(rows * oob * s.cin)));
      _mm256_storeu_si256(yp, _mm256_add_epi32(_mm256_loadu_si256(yp), fix));
    }
  }
}

// Output rows [oh0, oh1) of image n, channels [c0, c1) (c0 a multiple of 8): dots[(oh-oh0)*OW*ld
// + ow*ld + (c - c0)] for c < round_up(c1, 8). Blocks outside, rows inside (weights stay in L1).
template <int P, int P2, int RUN>  // P2 > 0: tiles of P2 pixels x 16 channels where two blocks remain
void band(const Ctx& c, int64_t n, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1, int32_t* dots, int64_t ld) {
  for (int64_t cb = c0; cb < c1;) {
    const bool two = P2 > 0 && cb + kCB < c1;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      int32_t* d = dots + (oh - oh0) * c.OW * ld + (cb - c0);
      if constexpr (P2 > 0) {
        if (two) {
          row_tiles<P2, 2, RUN>(c, cb / kCB, n, oh, d, ld);
          continue;
        }
      }
      row_tiles<P, 1, RUN>(c, cb / kCB, n, oh, d, ld);
    }
    cb += two ? 2 * kCB : kCB;
  }
}

// Tile shapes, chosen by interleaved timing of the variants on a Zen 3 CPU (bits output, 1 thread):
// - 16-channel tiles: 2 pixels x 16 channels for every W64 from 1 to 8: 2-5% faster than 3 x 16
//   (by min and median, 56x56x64-64 to 14x14x512-256) for W64 1, 2, 8; 3 x 16 is 13% slower for
//   W64 4 and 3-6% slower for W64 3, 5, 6, 7 (192-448 channels: what channel pruning in multiples
//   of 64 keeps), 4 x 8 8-12% slower there.
// - A lone 8-channel block (Cout % 16 = 8): 4 x 8 (up to 2-5% faster than 2 x 8 or 3 x 8 on
//   tiny layers such as 16x16x192-8 and 28x28x128-24).
// band<P, P2, RUN>: P pixels for a lone 8-channel block, P2 pixels for 16-channel tiles.
void run_band(const Ctx& c, int64_t n, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1, int32_t* dots,
              int64_t ld) {
  if (c.s.kw == 3) {
    switch (c.W64) {  // kernel-row runs of compile-time length (3*W64 words) for 64..512 channels
      case 1: band<4, 2, 3>(c, n, oh0, oh1, c0, c1, dots, ld); return;
      case 2: band<4, 2, 6>(c, n, oh0, oh1, c0, c1, dots, ld); return;
      case 3: band<4, 2, 9>(c, n, oh0, oh1, c0, c1, dots, ld); return;
      case 4: band<4, 2, 12>(c, n, oh0, oh1, c0, c1, dots, ld); return;
      case 5: band<4, 2, 15>(c, n, oh0, oh1, c0, c1, dots, ld); return;
      case 6: band<4, 2, 18>(c, n, oh0, oh1, c0, c1, dots, ld); return;
      case 7: band<4, 2, 21>(c, n, oh0, oh1, c0, c1, dots, ld); return;
      case 8: band<4, 2, 24>(c, n, oh0, oh1, c0, c1, dots, ld); return;
      default: break;
    }
  }
  // Any other kernel width or word count: run-time run length in 4-word steps, 2 x 16 tiles (4 x 8
  // lone block): 0.73-0.95x the time of one word per step on 7x7x576-512, 4x4x1024-1024,
  // 8x8x640-384 and 5x5 kernels; 3 x 16 tied with 2 x 16, 4 x 8 in between.
  band<4, 2, 0>(c, n, oh0, oh1, c0, c1, dots, ld);
}

// ---- Pointwise (1x1) path: dense layers and 1x1 convolutions --------------------------------
// Weights unsplit, [Cout/8][W64][8]: word j of a block is 2 ymm. A tile is P output pixels x 8
// channels. P = 1 (a dense layer at batch 1): the classic form, popcount(x XOR w) with the
// nibble split after the XOR (8 ops per 4 words, one pass over the weights, which is what the
// time is made of). P >= 2: the weights are split in registers once per word (3 ops per ymm) and
// shared by the P pixels, whose inputs come pre-split (6 ops per 4 words, as in tile()).
template <int P>
inline void tile_pw(const uint64_t* const* xp, const uint64_t* w, int64_t W64, int32_t tc, int32_t* dots,
                    int64_t ld) {
  const __m256i lut = nibble_lut(), low = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
  __m256i a8[P][2];
  for (int p = 0; p < P; ++p) a8[p][0] = a8[p][1] = zero;
  alignas(32) uint64_t a64[P][2][4];
  bool folded = false;
  for (int64_t j0 = 0; j0 < W64; j0 += kMaxWords) {
    if (j0 > 0) {  // fold the u8 lanes before they can overflow
      for (int p = 0; p < P; ++p)
        for (int v = 0; v < 2; ++v) {
          __m256i* d = reinterpret_cast<__m256i*>(a64[p][v]);
          const __m256i sv = _mm256_sad_epu8(a8[p][v], zero);
          _mm256_store_si256(d, folded ? _mm256_add_epi64(_mm256_load_si256(d), sv) : sv);
          a8[p][v] = zero;
        }
      folded = true;
    }
    const int64_t j1 = std::min(W64, j0 + kMaxWords);
    for (int64_t j = j0; j < j1; ++j) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + j * kCB));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + j * kCB + 4));
      if constexpr (P == 1) {  // xp[0]: the unsplit input pixel
        const __m256i xv = _mm256_set1_epi64x(static_cast<long long>(xp[0][j]));
        const __m256i t0 = _mm256_xor_si256(xv, w0), t1 = _mm256_xor_si256(xv, w1);
        a8[0][0] = _mm256_add_epi8(a8[0][0], popcnt_bytes(t0, lut, low));
        a8[0][1] = _mm256_add_epi8(a8[0][1], popcnt_bytes(t1, lut, low));
        asm("" : "+x"(a8[0][0]), "+x"(a8[0][1]));
      } else {  // xp[p]: pre-split input pixels (lo, hi per word)
        const __m256i wl[2] = {_mm256_and_si256(w0, low), _mm256_and_si256(w1, low)};
        const __m256i wh[2] = {_mm256_and_si256(_mm256_srli_epi16(w0, 4), low),
                               _mm256_and_si256(_mm256_srli_epi16(w1, 4), low)};
        for (int p = 0; p < P; ++p) {
          const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(xp[p][2 * j]));
          const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(xp[p][2 * j + 1]));
          for (int v = 0; v < 2; ++v) {
            a8[p][v] = _mm256_add_epi8(a8[p][v], _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(xl, wl[v])),
                                                                 _mm256_shuffle_epi8(lut, _mm256_xor_si256(xh, wh[v]))));
            asm("" : "+x"(a8[p][v]));
          }
        }
      }
    }
  }
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0), tcv = _mm256_set1_epi32(tc);
  for (int p = 0; p < P; ++p) {
    __m256i s0 = _mm256_sad_epu8(a8[p][0], zero), s1 = _mm256_sad_epu8(a8[p][1], zero);
    if (folded) {
      s0 = _mm256_add_epi64(s0, _mm256_load_si256(reinterpret_cast<const __m256i*>(a64[p][0])));
      s1 = _mm256_add_epi64(s1, _mm256_load_si256(reinterpret_cast<const __m256i*>(a64[p][1])));
    }
    const __m256i pc = _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(s0, idx),
                                                 _mm256_permutevar8x32_epi32(s1, idx), 0x20);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + p * ld), _mm256_sub_epi32(tcv, _mm256_add_epi32(pc, pc)));
  }
}

// Output pixels [q0, q1) (flat over N*OH*OW) x channels [c0, c1): dots[(q - q0)*ld + (c - c0)].
// x: the unsplit input; xs: the pre-split input [N*H*W][W64][lo, hi].
void pointwise(const BConvShape& s, const uint64_t* x, const uint64_t* xs, const uint64_t* wt, int64_t q0,
               int64_t q1, int64_t c0, int64_t c1, int32_t* dots, int64_t ld) {
  constexpr int kP = 4;
  const int64_t W64 = s.words(), OH = s.out_h(), OW = s.out_w();
  const int32_t tc = static_cast<int32_t>(s.cin);
  auto pixel = [&](int64_t q) {  // input pixel of output pixel q
    const int64_t n = q / (OH * OW), r = q % (OH * OW);
    return (n * s.h + r / OW * s.stride) * s.w + r % OW * s.stride;
  };
  for (int64_t cb = c0; cb < c1; cb += kCB) {
    const uint64_t* w = wt + cb / kCB * W64 * kCB;
    int32_t* d = dots + (cb - c0);
    const int64_t np = q1 - q0;
    if (np == 1) {
      const uint64_t* xp[1] = {x + pixel(q0) * W64};
      tile_pw<1>(xp, w, W64, tc, d, ld);
      continue;
    }
    // ceil(np / kP) tiles of balanced sizes (>= 2 pixels each)
    const int64_t nt = (np + kP - 1) / kP, base = np / nt, extra = np % nt;
    for (int64_t i = 0, q = q0; i < nt; ++i) {
      const int64_t size = base + (i < extra ? 1 : 0);
      const uint64_t* xp[kP];
      for (int64_t p = 0; p < size; ++p) xp[p] = xs + 2 * pixel(q + p) * W64;
      int32_t* dt = d + (q - q0) * ld;
      switch (size) {
        case 2: tile_pw<2>(xp, w, W64, tc, dt, ld); break;
        case 3: tile_pw<3>(xp, w, W64, tc, dt, ld); break;
        case 4: tile_pw<4>(xp, w, W64, tc, dt, ld); break;
        default: {  // 1 (np >= 2 gives sizes >= 2; kept for completeness)
          const uint64_t* x1[1] = {x + pixel(q) * W64};
          tile_pw<1>(x1, w, W64, tc, dt, ld);
        }
      }
      q += size;
    }
  }
}

// (Cout,KH,KW,W64) -> [ceil(Cout/8)][KH][KW][W64][lo 8 | hi 8] nibble-split, channels >= Cout
// zero; and the popcount of every weight tap, [ceil(Cout/8)][KH*KW][8], for the padding fix.
// Pointwise (1x1): [ceil(Cout/8)][W64][8] unsplit (half the bytes: a dense layer at batch 1
// reads each weight word once, so its time is the time to stream the weights).
void relayout(const uint64_t* w, const BConvShape& s, uint64_t* wt, int32_t* pcw, int threads) {
  const int64_t taps = s.kh * s.kw, W64 = s.words(), blocks = (s.cout + kCB - 1) / kCB;
  if (is_pointwise(s)) {
    parallel_for(blocks, threads, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t j = 0; j < kCB; ++j) {
          const int64_t co = b * kCB + j;
          for (int64_t wd = 0; wd < W64; ++wd) wt[(b * W64 + wd) * kCB + j] = co < s.cout ? w[co * W64 + wd] : 0;
        }
    });
    return;
  }
  parallel_for(blocks, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t j = 0; j < kCB; ++j) {  // source rows read sequentially; writes stay in L1
        const int64_t co = b * kCB + j;
        const uint64_t* src = w + co * taps * W64;
        uint64_t* dst = wt + b * taps * W64 * 2 * kCB + j;
        for (int64_t t = 0; t < taps; ++t) {
          int32_t pc = 0;
          for (int64_t wd = 0; wd < W64; ++wd, dst += 2 * kCB) {
            const uint64_t word = co < s.cout ? src[t * W64 + wd] : 0;
            dst[0] = word & kLowNibbles;
            dst[kCB] = (word >> 4) & kLowNibbles;
            pc += static_cast<int32_t>(_mm_popcnt_u64(word));
          }
          pcw[(b * taps + t) * kCB + j] = pc;
        }
      }
  });
}

}  // namespace

void bconv_avx2(const BConvArgs& a, int threads) {
  const BConvShape& s = a.s;
  static thread_local Scratch<uint64_t> wbuf, xbuf;  // the calling thread's (not a worker's)
  const int64_t W64 = s.words(), wwords = weight_words(s);
  const uint64_t* wt;
  if (a.prepared) {
    wt = a.prepared->words.get();
  } else {
    uint64_t* buf = wbuf.get(static_cast<size_t>(prepared_words(s)));
    relayout(a.w, s, buf, reinterpret_cast<int32_t*>(buf + wwords), threads);
    wt = buf;
  }
  Ctx c{nullptr, wt, reinterpret_cast<const int32_t*>(wt + wwords), s, W64, s.w + s.pad + s.pad_end,
        s.out_h(), s.out_w(), 0, 0};
  // Interior columns [in0, in1): every kw in bounds.
  interior_columns(s, c.in0, c.in1);
  // Split + zero-pad the input: [N][H][WP][W64][lo, hi].
  const int64_t rows_in = s.n * s.h, rw = c.WP * W64 * 2, lp = s.pad * W64 * 2;
  uint64_t* xs = xbuf.get(static_cast<size_t>(rows_in * rw));
  parallel_for(rows_in, threads, [&](int64_t r0, int64_t r1) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    for (int64_t r = r0; r < r1; ++r) {
      uint64_t* d = xs + r * rw;
      const uint64_t* src = a.x + r * s.w * W64;
      std::fill(d, d + lp, uint64_t{0});
      const int64_t nw = s.w * W64;
      int64_t i = 0;
      for (; i + 4 <= nw; i += 4) {  // 4 words -> (lo, hi) pairs, in order
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
        const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        const __m256i p02 = _mm256_unpacklo_epi64(lo, hi), p13 = _mm256_unpackhi_epi64(lo, hi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + lp + 2 * i), _mm256_permute2x128_si256(p02, p13, 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + lp + 2 * i + 4), _mm256_permute2x128_si256(p02, p13, 0x31));
      }
      for (; i < nw; ++i) {
        d[lp + 2 * i] = src[i] & kLowNibbles;
        d[lp + 2 * i + 1] = (src[i] >> 4) & kLowNibbles;
      }
      std::fill(d + lp + 2 * s.w * W64, d + rw, uint64_t{0});
    }
  });
  c.xs = xs;
  const StagePrep sp = prepare_stage(a.stage, s.cout, s.k_bits());
  const int64_t chunk = std::min(round_up(s.cout, kCB), kChunk), chunks = (s.cout + chunk - 1) / chunk;
  const int64_t ld = chunk;
  if (is_pointwise(s)) {  // tasks: blocks of output pixels x chunks of 64 channels
    const int64_t np = s.n * c.OH * c.OW, pb = std::max<int64_t>(1, std::min<int64_t>(np, 4096 / ld));
    const int64_t pblocks = (np + pb - 1) / pb;
    parallel_for(pblocks * chunks, threads, [&](int64_t t0, int64_t t1) {
      static thread_local Scratch<int32_t> dbuf;
      int32_t* dots = dbuf.get(static_cast<size_t>(pb * ld));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t ci = t % chunks, q0 = t / chunks * pb, q1 = std::min(np, q0 + pb);
        const int64_t c0 = ci * chunk, c1 = std::min(s.cout, c0 + chunk);
        pointwise(s, a.x, xs, wt, q0, q1, c0, c1, dots, ld);
        write_stage_avx2(a.stage, sp, dots, ld, q1 - q0, q0, c0, c1, s.cout, a.out);
        apply_stage_tail(a.stage, q1 - q0, q0, c0, c1, s.cout, a.out);
      }
    });
    return;
  }
  // Tasks: bands of output rows x chunks of 64 channels; a band's int32 scratch <= ~16 KiB.
  const int64_t band_rows = std::max<int64_t>(1, std::min<int64_t>(c.OH, 4096 / std::max<int64_t>(1, c.OW * ld)));
  const int64_t bands = (c.OH + band_rows - 1) / band_rows;
  parallel_for(s.n * bands * chunks, threads, [&](int64_t t0, int64_t t1) {
    static thread_local Scratch<int32_t> dbuf;
    int32_t* dots = dbuf.get(static_cast<size_t>(band_rows * c.OW * ld));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ci = t % chunks, nb = t / chunks, n = nb / bands, bi = nb % bands;
      const int64_t oh0 = bi * band_rows, oh1 = std::min(c.OH, oh0 + band_rows);
      const int64_t c0 = ci * chunk, c1 = std::min(s.cout, c0 + chunk);
      run_band(c, n, oh0, oh1, c0, c1, dots, ld);
      write_stage_avx2(a.stage, sp, dots, ld, (oh1 - oh0) * c.OW, (n * c.OH + oh0) * c.OW, c0, c1, s.cout, a.out);
      apply_stage_tail(a.stage, (oh1 - oh0) * c.OW, (n * c.OH + oh0) * c.OW, c0, c1, s.cout, a.out);
    }
  });
}

void prepare_weights_avx2(const uint64_t* w, const BConvShape& s, PreparedWeights& p, int threads) {
  const int64_t wwords = weight_words(s);
  p.nwords = static_cast<size_t>(prepared_words(s));  // weights, then popcounts
  p.words = aligned_words(p.nwords);
  relayout(w, s, p.words.get(), reinterpret_cast<int32_t*>(p.words.get() + wwords), threads);
}

uint64_t popcount_loop_avx2_lut(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
  const __m256i lut = nibble_lut(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  __m256i total = zero;
  for (int64_t it = 0; it < iters; ++it) {
    // 4 independent byte accumulators, widened every 16 vectors (16*8 = 128 <= 255).
    __m256i acc[4] = {zero, zero, zero, zero};
    for (int64_t i = 0; i + 16 <= words; i += 16) {
      for (int u = 0; u < 4; ++u) {
        const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 4 * u));
        const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 4 * u));
        acc[u] = _mm256_add_epi8(acc[u], popcnt_bytes(_mm256_xor_si256(va, vb), lut, low));
      }
      if ((i / 16) % 8 == 7)
        for (int u = 0; u < 4; ++u) {
          total = _mm256_add_epi64(total, _mm256_sad_epu8(acc[u], zero));
          acc[u] = zero;
        }
    }
    for (int u = 0; u < 4; ++u) total = _mm256_add_epi64(total, _mm256_sad_epu8(acc[u], zero));
    asm volatile("" : "+x"(total) : : "memory");
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), total);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// The conv's inner loop without the conv: `a` streams from L1 as nibble-split broadcasts (the
// input pixels), 4 words of `b` stay in registers split into lo/hi nibbles (the weights):
// per 4 words 2 XOR + 2 pshufb + 2 byte adds.
uint64_t popcount_loop_avx2(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
  const __m256i lut = nibble_lut(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  Scratch<uint64_t> buf;
  uint64_t* split = buf.get(static_cast<size_t>(2 * words));
  for (int64_t i = 0; i < words; ++i) {
    split[2 * i] = a[i] & kLowNibbles;
    split[2 * i + 1] = (a[i] >> 4) & kLowNibbles;
  }
  __m256i wl[2], wh[2];
  for (int v = 0; v < 2; ++v) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 4 * v));
    wl[v] = _mm256_and_si256(w, low);
    wh[v] = _mm256_and_si256(_mm256_srli_epi16(w, 4), low);
  }
  __m256i total = zero;
  const uint64_t* sp = split;
  // A group = 3 "pixel" words, each XORed with 8 weight words (3 pixels x 2 vectors, as the
  // conv tile): 24 word XOR+popcounts, so `words` of work is words / 24 groups.
  const int64_t groups = words / 24;
  for (int64_t it = 0; it < iters; ++it) {
    for (int64_t g0 = 0; g0 < groups; g0 += 30) {  // widen u8 lanes every 30 words (<= 31)
      __m256i a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero;
      const int64_t g1 = g0 + 30 < groups ? g0 + 30 : groups;
      for (int64_t g = g0; g < g1; ++g) {
        const uint64_t* q = sp + 6 * g;
#define ONEBIT_PIX(k, acc0, acc1)                                                                  \
  {                                                                                               \
    const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(q[2 * k]));                     \
    const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(q[2 * k + 1]));                 \
    acc0 = _mm256_add_epi8(acc0, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(xl, wl[0])), \
                                                 _mm256_shuffle_epi8(lut, _mm256_xor_si256(xh, wh[0])))); \
    acc1 = _mm256_add_epi8(acc1, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(xl, wl[1])), \
                                                 _mm256_shuffle_epi8(lut, _mm256_xor_si256(xh, wh[1])))); \
  }
        ONEBIT_PIX(0, a0, a1)
        ONEBIT_PIX(1, a2, a3)
        ONEBIT_PIX(2, a4, a5)
#undef ONEBIT_PIX
      }
      for (__m256i a8 : {a0, a1, a2, a3, a4, a5}) total = _mm256_add_epi64(total, _mm256_sad_epu8(a8, zero));
    }
    asm volatile("" : "+x"(total) : : "memory");
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), total);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t popcount_loop_avx2_popcnt(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
  uint64_t total = 0;
  for (int64_t it = 0; it < iters; ++it) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = 0; i + 4 <= words; i += 4) {
      s0 += static_cast<uint64_t>(_mm_popcnt_u64(a[i] ^ b[i]));
      s1 += static_cast<uint64_t>(_mm_popcnt_u64(a[i + 1] ^ b[i + 1]));
      s2 += static_cast<uint64_t>(_mm_popcnt_u64(a[i + 2] ^ b[i + 2]));
      s3 += static_cast<uint64_t>(_mm_popcnt_u64(a[i + 3] ^ b[i + 3]));
    }
    total += s0 + s1 + s2 + s3;
    asm volatile("" : "+r"(total) : : "memory");
  }
  return total;
}

}  // namespace onebit::kernels
