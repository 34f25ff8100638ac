// AVX2 binary direct convolution. AVX2 has no vector popcount, so popcounts use the nibble
// lookup (pshufb) method of Mula et al.: per byte, LUT[lo nibble] + LUT[hi nibble].
//
// Nibble pre-split: popcount(x XOR w) per byte = LUT[xl ^ wl] + LUT[xh ^ wh] with
// xl = x & 0x0F.., xh = (x >> 4) & 0x0F.. (per byte). Both operands are split once per call
// (input: one pass; weights: during the re-layout), so the inner loop needs 2 XOR + 2 pshufb +
// 2 byte adds per 4 words instead of XOR + shift + 2 AND + 2 pshufb + 2 adds (6 ops, not 8).
//
// Register blocking: a tile is P output pixels (same output row) x 8 output channels (2 ymm of
// 4 channels; split into lo/hi nibble halves: 4 weight ymm per tap word). Each pixel's split
// input word is 2 broadcasts; the P*2 XOR+popcounts add into uint8 lanes. Lanes gain <= 8 per
// word, so they are widened (psadbw -> u64 per channel) every <= 31 words: exact for any K
// (the "narrow lanes with periodic widening" accumulator).
// Weights are re-laid out once per call as [Cout/8][KH][KW][W64][lo 8 | hi 8] so a tap word's
// 8 channels are contiguous. Every output row runs in full tiles, edge pixels included: an
// out-of-bounds tap reads zero words and its weight popcount is subtracted afterwards (exact
// TRUE-ZERO padding, see tile()).
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_avx2.h"

namespace onebit::kernels {
namespace {

constexpr int64_t kCB = 8;        // output channels per tile
constexpr int64_t kMaxWords = 31;
constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0Full;  // uint8 lanes: 31 words * 8 bits = 248 <= 255

inline __m256i popcnt_bytes(__m256i v, __m256i lut, __m256i low) {
  const __m256i lo = _mm256_and_si256(v, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

inline __m256i nibble_lut() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                          0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
}

struct Geo {
  const uint64_t* x;      // image n, nibble-split: [H][W][W64][lo, hi]
  const uint64_t* wt;     // re-laid-out weights
  const int32_t* pcw;     // [Cout/8][KH*KW][8] popcount of each weight tap (padding correction)
  const uint64_t* zeros;  // 2*W64 zero words: the stand-in input of an out-of-bounds tap
  int64_t H, W, W64, KH, KW, stride, pad, cin;
};

// Popcount sums for P pixels (ow0 .. ow0+P-1 of row oh) x 8 channels of block `blk`, over the
// rows kh in [kh0, kh1) (in bounds for the whole output row) and all kw. A pixel whose tap kw is
// outside the input reads zero words instead and the tap's weight popcount is subtracted
// afterwards: popcount(0 XOR w) = popcount(w), so the sum equals the in-bounds-only sum (TRUE
// zero padding) and every pixel of a row, edge or not, runs in the same full-width tile.
// y = T*Cin - 2*pc with T the pixel's in-bounds tap count.
template <int P, int FW, bool EDGE, int NB = 1>  // NB: 8-channel blocks per tile (1 or 2)
inline void tile(const Geo& g, int64_t blk, int64_t oh, int64_t ow0, int64_t kh0, int64_t kh1,
                 int32_t* dots, int64_t ld) {
  constexpr int V = 2 * NB;  // ymm of 4 channels
  const __m256i lut = nibble_lut(), zero = _mm256_setzero_si256();
  const int64_t W64 = FW > 0 ? FW : g.W64, pstride = 2 * g.stride * W64, KW = g.KW;
  const int64_t bstride = g.KH * KW * W64 * 2 * kCB;  // words between consecutive 8-blocks
  const uint64_t* wblk = g.wt + blk * bstride;
  int64_t kwv0[P], kwv1[P];  // valid kw range of each pixel
  for (int p = 0; p < P; ++p) {
    if (EDGE) {
      tap_range(ow0 + p, g.stride, g.pad, KW, g.W, kwv0[p], kwv1[p]);
    } else {
      kwv0[p] = 0;
      kwv1[p] = KW;
    }
  }
  __m256i a8[P][V], a64[P][V];
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < V; ++v) a8[p][v] = a64[p][v] = zero;
  auto widen = [&]() __attribute__((always_inline)) {
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < V; ++v) {
        a64[p][v] = _mm256_add_epi64(a64[p][v], _mm256_sad_epu8(a8[p][v], zero));
        a8[p][v] = zero;
      }
  };
  // u8 lanes gain <= 8 per word: widen before more than kMaxWords words accumulate. When a
  // whole kernel row fits (KW*W64 <= 31, e.g. 3x3 up to 640 channels) the check runs per row.
  const bool per_row = KW * W64 <= kMaxWords;
  int64_t since = 0;
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    if (per_row) {
      if (since + KW * W64 > kMaxWords) {
        widen();
        since = 0;
      }
      since += KW * W64;
    }
    const int64_t ih = oh * g.stride - g.pad + kh;
    const uint64_t* xrow = g.x + 2 * (ih * g.W + ow0 * g.stride - g.pad) * W64;  // pixel 0, kw 0
    const uint64_t* wrow = wblk + kh * KW * W64 * 2 * kCB;
    for (int64_t kw = 0; kw < KW; ++kw) {
      const uint64_t* xs[P];
      for (int p = 0; p < P; ++p) {
        if (EDGE)
          xs[p] = (kw >= kwv0[p] && kw < kwv1[p]) ? xrow + (p * pstride + 2 * kw * W64) : g.zeros;
        else
          xs[p] = xrow + (p * pstride + 2 * kw * W64);
      }
      const uint64_t* wp = wrow + kw * W64 * 2 * kCB;
      for (int64_t wd0 = 0; wd0 < W64; wd0 += kMaxWords) {
        const int64_t wd1 = (FW > 0 || wd0 + kMaxWords >= W64) ? W64 : wd0 + kMaxWords;
        if (!per_row) {
          if (since + (wd1 - wd0) > kMaxWords) {
            widen();
            since = 0;
          }
          since += wd1 - wd0;
        }
        for (int64_t wd = wd0; wd < wd1; ++wd) {
          __m256i wl[V], wh[V];
          for (int b = 0; b < NB; ++b) {
            const __m256i* wv = reinterpret_cast<const __m256i*>(wp + b * bstride + wd * 2 * kCB);
            wl[2 * b] = _mm256_load_si256(wv);
            wl[2 * b + 1] = _mm256_load_si256(wv + 1);
            wh[2 * b] = _mm256_load_si256(wv + 2);
            wh[2 * b + 1] = _mm256_load_si256(wv + 3);
          }
          for (int p = 0; p < P; ++p) {
            const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(xs[p][2 * wd]));
            const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(xs[p][2 * wd + 1]));
            for (int v = 0; v < V; ++v)
              a8[p][v] = _mm256_add_epi8(a8[p][v], _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(xl, wl[v])),
                                                                   _mm256_shuffle_epi8(lut, _mm256_xor_si256(xh, wh[v]))));
          }
        }
      }
    }
  }
  widen();
  // pc <= K < 2^31 so the low 32 bits of each u64 lane hold it exactly.
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
  for (int b = 0; b < NB; ++b) {
    const int32_t* pcw = g.pcw + (blk + b) * g.KH * KW * kCB;
    for (int p = 0; p < P; ++p) {
      const __m256i lo = _mm256_permutevar8x32_epi32(a64[p][2 * b], idx);
      const __m256i hi = _mm256_permutevar8x32_epi32(a64[p][2 * b + 1], idx);
      __m256i pc = _mm256_permute2x128_si256(lo, hi, 0x20);
      if (EDGE)  // remove the zero-word taps: popcount(0 XOR w) = popcount(w)
        for (int64_t kh = kh0; kh < kh1; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw)
            if (kw < kwv0[p] || kw >= kwv1[p])
              pc = _mm256_sub_epi32(pc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pcw + (kh * KW + kw) * kCB)));
      const __m256i tc = _mm256_set1_epi32(static_cast<int32_t>((kh1 - kh0) * (kwv1[p] - kwv0[p]) * g.cin));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + (ow0 + p) * ld + b * kCB),
                          _mm256_sub_epi32(tc, _mm256_add_epi32(pc, pc)));
    }
  }
}


template <int P, int FW, int NB>
inline void tile_any(bool edge, const Geo& g, int64_t blk, int64_t oh, int64_t ow0, int64_t kh0,
                     int64_t kh1, int32_t* d, int64_t ld) {
  if (edge)
    tile<P, FW, true, NB>(g, blk, oh, ow0, kh0, kh1, d, ld);
  else
    tile<P, FW, false, NB>(g, blk, oh, ow0, kh0, kh1, d, ld);
}

// Pixels per tile (measured on Zen 3): 3 for 1-2 words per tap (6 u8 accumulators + 4 weight
// registers + LUT stay in the 16 ymm), 6 for wider taps (weights then come from L1 as memory
// operands, and more pixels share each weight load).
constexpr int kPSmall = 3, kPLarge = 6;
// 1-word taps (Cin <= 64): tiles of 3 pixels x 16 channels (two 8-channel blocks) amortize the
// per-tap loop overhead better (~5% on 56x56x64-64, measured; not for 2-word taps).
constexpr int kPSmall2 = 3;
template <int FW, int kP, int NB>
void row_tiles(const Geo& g, int64_t blk, int64_t oh, int64_t OW, int64_t in0, int64_t in1,
               int64_t kh0, int64_t kh1, int32_t* d, int64_t ld) {
  // ceil(OW / kP) tiles of balanced sizes (7 pixels -> 4 + 3, not 6 + 1).
  const int64_t nt = (OW + kP - 1) / kP, base = OW / nt, extra = OW % nt;
  for (int64_t i = 0, ow = 0; i < nt; ++i) {
    const int64_t size = base + (i < extra ? 1 : 0);
    const bool edge = ow < in0 || ow + size > in1;
    switch (size) {
      case 1: tile_any<1, FW, NB>(edge, g, blk, oh, ow, kh0, kh1, d, ld); break;
      case 2: if constexpr (kP >= 2) tile_any<2, FW, NB>(edge, g, blk, oh, ow, kh0, kh1, d, ld); break;
      case 3: if constexpr (kP >= 3) tile_any<3, FW, NB>(edge, g, blk, oh, ow, kh0, kh1, d, ld); break;
      case 4: if constexpr (kP >= 4) tile_any<4, FW, NB>(edge, g, blk, oh, ow, kh0, kh1, d, ld); break;
      case 5: if constexpr (kP >= 5) tile_any<5, FW, NB>(edge, g, blk, oh, ow, kh0, kh1, d, ld); break;
      case 6: if constexpr (kP >= 6) tile_any<6, FW, NB>(edge, g, blk, oh, ow, kh0, kh1, d, ld); break;
      default: break;
    }
    ow += size;
  }
}

// Fills dots[ow*ld + (co - c0)] for co in [c0, round_up(c1, 8)) of output row oh.
void conv_row(const Geo& g, const BConvShape& s, int64_t oh, int64_t c0, int64_t c1,
              int32_t* dots, int64_t ld) {
  const int64_t OW = s.out_w();
  int64_t kh0, kh1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  // Interior columns [in0, in1): every kw in bounds (tiles there skip the edge logic).
  int64_t in0 = (s.pad + s.stride - 1) / s.stride;
  int64_t in1 = s.w + s.pad - s.kw >= 0 ? (s.w + s.pad - s.kw) / s.stride + 1 : 0;
  in0 = std::min(in0, OW);
  in1 = std::max(in0, std::min(in1, OW));
  for (int64_t cb = c0; cb < c1;) {
    int32_t* d = dots + (cb - c0);
    const int64_t b = cb / kCB;
    // Two 8-channel blocks per tile when both exist and a tap is one word.
    const bool two = cb + kCB < c1 && g.W64 == 1;
    switch (g.W64) {  // word loops unrolled for the common small widths
      case 1:
        if (two) row_tiles<1, kPSmall2, 2>(g, b, oh, OW, in0, in1, kh0, kh1, d, ld);
        else row_tiles<1, kPSmall, 1>(g, b, oh, OW, in0, in1, kh0, kh1, d, ld);
        break;
      case 2: row_tiles<2, kPSmall, 1>(g, b, oh, OW, in0, in1, kh0, kh1, d, ld); break;
      case 4: row_tiles<4, kPLarge, 1>(g, b, oh, OW, in0, in1, kh0, kh1, d, ld); break;
      case 8: row_tiles<8, kPLarge, 1>(g, b, oh, OW, in0, in1, kh0, kh1, d, ld); break;
      default: row_tiles<0, kPLarge, 1>(g, b, oh, OW, in0, in1, kh0, kh1, d, ld); break;
    }
    cb += two ? 2 * kCB : kCB;
  }
}

// (Cout,KH,KW,W64) -> [ceil(Cout/8)][KH][KW][W64][lo 8 | hi 8] nibble-split, channels >= Cout
// zero; and the popcount
// of every weight tap, [ceil(Cout/8)][KH*KW][8], for the padding correction.
void relayout(const uint64_t* w, const BConvShape& s, uint64_t* wt, int32_t* pcw, int threads) {
  const int64_t taps = s.kh * s.kw, W64 = s.words(), blocks = (s.cout + kCB - 1) / kCB;
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

}  // namespace

void bconv_avx2(const BConvArgs& a, int threads) {
  const BConvShape& s = a.s;
  // Reused across calls of this thread: no allocation or page faults on the hot path.
  static thread_local AlignedWords wbuf, zbuf;
  static thread_local std::vector<int32_t> pcw;
  const int64_t blocks = (s.cout + kCB - 1) / kCB, W64 = s.words();
  static thread_local AlignedWords xbuf;
  const uint64_t* wt;
  const int32_t* pcwp;  // (a thread_local named inside the lambda would be the worker's)
  if (a.prepared) {
    wt = a.prepared->words.get();
    pcwp = a.prepared->pcw.data();
  } else {
    uint64_t* buf = wbuf.get(static_cast<size_t>(blocks * kCB * s.kh * s.kw * W64 * 2));
    pcw.resize(static_cast<size_t>(blocks * kCB * s.kh * s.kw));
    relayout(a.w, s, buf, pcw.data(), threads);
    wt = buf;
    pcwp = pcw.data();
  }
  uint64_t* zeros = zbuf.get(static_cast<size_t>(2 * W64));
  std::fill(zeros, zeros + 2 * W64, uint64_t{0});
  const int64_t in_words = s.n * s.h * s.w * W64;
  uint64_t* xs = xbuf.get(static_cast<size_t>(2 * in_words));
  parallel_for((in_words + 4095) / 4096, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0 * 4096; i < std::min(in_words, b1 * 4096); ++i) {
      xs[2 * i] = a.x[i] & kLowNibbles;
      xs[2 * i + 1] = (a.x[i] >> 4) & kLowNibbles;
    }
  });
  const StagePrep sp = prepare_stage(a.stage, s.cout, s.k_bits());
  const TaskSplit split = split_tasks(s, threads);
  const int64_t OH = s.out_h(), OW = s.out_w(), ld = round_up(split.chunk, kCB);
  parallel_for(split.tasks(), threads, [&](int64_t t0, int64_t t1) {
    static thread_local std::vector<int32_t> dots;
    dots.resize(static_cast<size_t>(OW * ld));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = t / split.chunks, ci = t % split.chunks;
      const int64_t n = row / OH, oh = row % OH;
      const int64_t c0 = ci * split.chunk, c1 = std::min(s.cout, c0 + split.chunk);
      const Geo g{xs + 2 * n * s.h * s.w * W64, wt, pcwp, zeros, s.h, s.w, W64, s.kh, s.kw,
                  s.stride, s.pad, s.cin};
      conv_row(g, s, oh, c0, c1, dots.data(), ld);
      write_stage_avx2(a.stage, sp, dots.data(), ld, OW, row * OW, c0, c1, s.cout, a.out);
    }
  });
}

void prepare_weights_avx2(const uint64_t* w, const BConvShape& s, PreparedWeights& p, int threads) {
  const int64_t blocks = (s.cout + kCB - 1) / kCB;
  p.nwords = static_cast<size_t>(blocks * kCB * s.kh * s.kw * s.words() * 2);
  p.words = aligned_words(p.nwords);
  p.pcw.assign(static_cast<size_t>(blocks * kCB * s.kh * s.kw), 0);
  relayout(w, s, p.words.get(), p.pcw.data(), threads);
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
  std::vector<uint64_t> split(static_cast<size_t>(2 * words));
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
  const uint64_t* sp = split.data();
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
