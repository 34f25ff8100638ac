// AVX2 binary direct convolution. AVX2 has no vector popcount, so popcounts use the nibble
// lookup (pshufb) method of Mula et al.: per byte, LUT[lo nibble] + LUT[hi nibble].
//
// Register blocking: a tile is P output pixels (same output row) x 8 output channels
// (2 ymm of 4 weight words). For each tap and input word, the 8 channels' weight words are
// two vector loads, each pixel's input word one broadcast, and the P*2 XOR+popcounts add into
// uint8 lanes. Lanes gain <= 8 per word, so they are widened (psadbw -> u64 per channel)
// every <= 31 words: exact for any K (the "narrow lanes with periodic widening" accumulator).
// Weights are re-laid out once per call as [Cout/8][KH][KW][W64][8] so the 8 channels of a
// tap/word are contiguous. Edge pixels (some taps out of bounds) run as P=1 tiles over their
// in-bounds taps only (TRUE-ZERO padding), interior pixels as full tiles.
#include <immintrin.h>

#include <vector>

#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_avx2.h"

namespace onebit::kernels {
namespace {

constexpr int64_t kCB = 8;        // output channels per tile
constexpr int64_t kMaxWords = 31;  // uint8 lanes: 31 words * 8 bits = 248 <= 255

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
  const uint64_t* x;   // image n
  const uint64_t* wt;  // re-laid-out weights
  int64_t H, W, W64, KH, KW, stride, pad, cin;
};

// Popcount sums for P pixels (ow0 .. ow0+P-1 of row oh) x 8 channels of block `wblk`, over
// taps kh in [kh0,kh1), kw in [kw0,kw1) (in bounds for all P pixels); y = T*Cin - 2*pc.
template <int P>
inline void tile(const Geo& g, const uint64_t* wblk, int64_t oh, int64_t ow0, int64_t kh0,
                 int64_t kh1, int64_t kw0, int64_t kw1, int32_t* dots, int64_t ld) {
  const __m256i lut = nibble_lut(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  __m256i a8[P][2], a64[P][2];
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < 2; ++v) a8[p][v] = a64[p][v] = zero;
  const int64_t W64 = g.W64, pstride = g.stride * W64;
  int64_t since = 0;
  auto flush = [&] {
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < 2; ++v) {
        a64[p][v] = _mm256_add_epi64(a64[p][v], _mm256_sad_epu8(a8[p][v], zero));
        a8[p][v] = zero;
      }
    since = 0;
  };
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const int64_t ih = oh * g.stride - g.pad + kh;
    for (int64_t kw = kw0; kw < kw1; ++kw) {
      const uint64_t* xp = g.x + (ih * g.W + ow0 * g.stride - g.pad + kw) * W64;
      const uint64_t* wp = wblk + (kh * g.KW + kw) * W64 * kCB;
      for (int64_t wd0 = 0; wd0 < W64; wd0 += kMaxWords) {
        const int64_t wd1 = wd0 + kMaxWords < W64 ? wd0 + kMaxWords : W64;
        if (since + (wd1 - wd0) > kMaxWords) flush();
        for (int64_t wd = wd0; wd < wd1; ++wd) {
          const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + wd * kCB));
          const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + wd * kCB + 4));
          for (int p = 0; p < P; ++p) {
            const __m256i xb = _mm256_set1_epi64x(static_cast<long long>(xp[p * pstride + wd]));
            a8[p][0] = _mm256_add_epi8(a8[p][0], popcnt_bytes(_mm256_xor_si256(xb, w0), lut, low));
            a8[p][1] = _mm256_add_epi8(a8[p][1], popcnt_bytes(_mm256_xor_si256(xb, w1), lut, low));
          }
        }
        since += wd1 - wd0;
      }
    }
  }
  flush();
  // y = T*Cin - 2*pc; pc <= K < 2^31 so the low 32 bits of each u64 lane hold it exactly.
  const __m256i tc = _mm256_set1_epi32(static_cast<int32_t>((kh1 - kh0) * (kw1 - kw0) * g.cin));
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
  for (int p = 0; p < P; ++p) {
    const __m256i lo = _mm256_permutevar8x32_epi32(a64[p][0], idx);  // 4 x u32 in low half
    const __m256i hi = _mm256_permutevar8x32_epi32(a64[p][1], idx);
    const __m256i pc = _mm256_permute2x128_si256(lo, hi, 0x20);
    const __m256i y = _mm256_sub_epi32(tc, _mm256_add_epi32(pc, pc));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + (ow0 + p) * ld), y);
  }
}

template <int P>
inline void tile_n(int64_t count, const Geo& g, const uint64_t* wblk, int64_t oh, int64_t ow0,
                   int64_t kh0, int64_t kh1, int64_t kw0, int64_t kw1, int32_t* dots, int64_t ld) {
  switch (count) {
    case 1: tile<1>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    case 2: tile<2>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    case 3: tile<3>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    default: tile<P>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
  }
}

constexpr int kP = 4;  // pixels per tile: 8 u8 accumulators + weights + LUT fit 16 ymm

// Fills dots[ow*ld + (co - c0)] for co in [c0, round_up(c1, 8)) of output row (n, oh).
void conv_row(const Geo& g, const BConvShape& s, int64_t oh, int64_t c0, int64_t c1,
              int32_t* dots, int64_t ld) {
  const int64_t OW = s.out_w();
  int64_t kh0, kh1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  // Interior columns: every kw in bounds.
  int64_t in0 = (s.pad + s.stride - 1) / s.stride;
  int64_t in1 = s.w + s.pad - s.kw >= 0 ? (s.w + s.pad - s.kw) / s.stride + 1 : 0;
  in0 = std::min(in0, OW);
  in1 = std::max(in0, std::min(in1, OW));
  for (int64_t cb = c0; cb < c1; cb += kCB) {
    const uint64_t* wblk = g.wt + (cb / kCB) * s.kh * s.kw * g.W64 * kCB;
    int32_t* d = dots + (cb - c0);
    for (int64_t ow = 0; ow < OW; ++ow) {
      if (ow == in0 && in1 > in0) {  // interior run
        for (; ow + kP <= in1; ow += kP) tile<kP>(g, wblk, oh, ow, kh0, kh1, 0, s.kw, d, ld);
        if (ow < in1) tile_n<kP>(in1 - ow, g, wblk, oh, ow, kh0, kh1, 0, s.kw, d, ld);
        ow = in1 - 1;
        continue;
      }
      int64_t kw0, kw1;
      tap_range(ow, s.stride, s.pad, s.kw, s.w, kw0, kw1);
      tile<1>(g, wblk, oh, ow, kh0, kh1, kw0, kw1, d, ld);
    }
  }
}

// (Cout,KH,KW,W64) -> [ceil(Cout/8)][KH][KW][W64][8], channels >= Cout zero.
void relayout(const uint64_t* w, const BConvShape& s, uint64_t* wt, int threads) {
  const int64_t taps = s.kh * s.kw * s.words(), blocks = (s.cout + kCB - 1) / kCB;
  parallel_for(blocks, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t j = 0; j < kCB; ++j) {
          const int64_t co = b * kCB + j;
          wt[(b * taps + t) * kCB + j] = co < s.cout ? w[co * taps + t] : 0;
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
  // Reused across calls of this thread: no page faults on the hot path.
  static thread_local AlignedWords wbuf;
  const int64_t blocks = (s.cout + kCB - 1) / kCB;
  uint64_t* wt = wbuf.get(static_cast<size_t>(blocks * kCB * s.kh * s.kw * s.words()));
  relayout(a.w, s, wt, threads);
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
      const Geo g{a.x + n * s.h * s.w * s.words(), wt, s.h, s.w, s.words(), s.kh, s.kw, s.stride, s.pad, s.cin};
      conv_row(g, s, oh, c0, c1, dots.data(), ld);
      write_stage_avx2(a.stage, sp, dots.data(), ld, OW, row * OW, c0, c1, s.cout, a.out);
    }
  });
}

uint64_t popcount_loop_avx2(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
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
