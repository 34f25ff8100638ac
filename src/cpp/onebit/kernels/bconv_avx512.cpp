// AVX-512 binary direct convolution with VPOPCNTQ (AVX512_VPOPCNTDQ): XOR + popcount + add per
// 64-bit lane, no LUT and no widening (u64 lanes cannot overflow).
//
// Register blocking: a tile is P = 8 output pixels x 16 output channels (2 zmm of 8 weight
// words); 16 zmm accumulators + 2 weight registers + 1 broadcast fit the 32 zmm registers.
// Weights re-laid out as [Cout/16][KH][KW][W64][16], once by prepare_weights_avx512 (or per call
// into a thread-local buffer when unprepared). Unlike the AVX2 kernel there is no padded copy of
// the input: a task is one output row x a chunk of output channels; interior pixels run in tiles
// of 8 (the remainder as one 1-7 pixel tile), edge pixels as 1-pixel tiles over their in-bounds
// taps. Compiled on every x86 build, selected only when the CPU has AVX-512 F/BW/VL/DQ +
// VPOPCNTDQ + VNNI; the tests compare it with the scalar reference on such CPUs and skip it
// visibly elsewhere.
#include <immintrin.h>


#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_avx2.h"

namespace onebit::kernels {
namespace {

constexpr int64_t kCB = 16;
constexpr int kP = 8;

struct Geo {
  const uint64_t* x;
  const uint64_t* wt;
  int64_t H, W, W64, KH, KW, stride, pad, cin;
};

template <int P>
inline void tile(const Geo& g, const uint64_t* wblk, int64_t oh, int64_t ow0, int64_t kh0,
                 int64_t kh1, int64_t kw0, int64_t kw1, int32_t* dots, int64_t ld) {
  __m512i acc[P][2];
  for (int p = 0; p < P; ++p) acc[p][0] = acc[p][1] = _mm512_setzero_si512();
  const int64_t W64 = g.W64, pstride = g.stride * W64;
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const int64_t ih = oh * g.stride - g.pad + kh;
    for (int64_t kw = kw0; kw < kw1; ++kw) {
      const uint64_t* xp = g.x + (ih * g.W + ow0 * g.stride - g.pad + kw) * W64;
      const uint64_t* wp = wblk + (kh * g.KW + kw) * W64 * kCB;
      for (int64_t wd = 0; wd < W64; ++wd) {
        const __m512i w0 = _mm512_load_si512(wp + wd * kCB);
        const __m512i w1 = _mm512_load_si512(wp + wd * kCB + 8);
        for (int p = 0; p < P; ++p) {
          const __m512i xb = _mm512_set1_epi64(static_cast<long long>(xp[p * pstride + wd]));
          acc[p][0] = _mm512_add_epi64(acc[p][0], _mm512_popcnt_epi64(_mm512_xor_si512(xb, w0)));
          acc[p][1] = _mm512_add_epi64(acc[p][1], _mm512_popcnt_epi64(_mm512_xor_si512(xb, w1)));
        }
      }
    }
  }
  // y = T*Cin - 2*pc; pc <= K < 2^31, so truncating the u64 lanes to 32 bits is exact.
  const __m256i tc = _mm256_set1_epi32(static_cast<int32_t>((kh1 - kh0) * (kw1 - kw0) * g.cin));
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < 2; ++v) {
      const __m256i pc = _mm512_cvtepi64_epi32(acc[p][v]);
      const __m256i y = _mm256_sub_epi32(tc, _mm256_add_epi32(pc, pc));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + (ow0 + p) * ld + v * 8), y);
    }
}

inline void tile_n(int64_t count, const Geo& g, const uint64_t* wblk, int64_t oh, int64_t ow0,
                   int64_t kh0, int64_t kh1, int64_t kw0, int64_t kw1, int32_t* dots, int64_t ld) {
  switch (count) {
    case 1: tile<1>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    case 2: tile<2>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    case 3: tile<3>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    case 4: tile<4>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    case 5: tile<5>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    case 6: tile<6>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
    default: tile<7>(g, wblk, oh, ow0, kh0, kh1, kw0, kw1, dots, ld); break;
  }
}

void conv_row(const Geo& g, const BConvShape& s, int64_t oh, int64_t c0, int64_t c1,
              int32_t* dots, int64_t ld) {
  const int64_t OW = s.out_w();
  int64_t kh0, kh1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  int64_t in0, in1;
  interior_columns(s, in0, in1);
  for (int64_t cb = c0; cb < c1; cb += kCB) {
    const uint64_t* wblk = g.wt + (cb / kCB) * s.kh * s.kw * g.W64 * kCB;
    int32_t* d = dots + (cb - c0);
    for (int64_t ow = 0; ow < OW; ++ow) {
      if (ow == in0 && in1 > in0) {
        for (; ow + kP <= in1; ow += kP) tile<kP>(g, wblk, oh, ow, kh0, kh1, 0, s.kw, d, ld);
        if (ow < in1) tile_n(in1 - ow, g, wblk, oh, ow, kh0, kh1, 0, s.kw, d, ld);
        ow = in1 - 1;
        continue;
      }
      int64_t kw0, kw1;
      tap_range(ow, s.stride, s.pad, s.kw, s.w, kw0, kw1);
      tile<1>(g, wblk, oh, ow, kh0, kh1, kw0, kw1, d, ld);
    }
  }
}

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

}  // namespace

void bconv_avx512(const BConvArgs& a, int threads) {
  const BConvShape& s = a.s;
  static thread_local Scratch<uint64_t> wbuf;
  const int64_t blocks = (s.cout + kCB - 1) / kCB;
  const uint64_t* wt;
  if (a.prepared) {
    wt = a.prepared->words.get();
  } else {
    uint64_t* buf = wbuf.get(static_cast<size_t>(blocks * kCB * s.kh * s.kw * s.words()));
    relayout(a.w, s, buf, threads);
    wt = buf;
  }
  const StagePrep sp = prepare_stage(a.stage, s.cout, s.k_bits());
  const TaskSplit split = split_tasks(s, threads);
  const int64_t OH = s.out_h(), OW = s.out_w(), ld = round_up(split.chunk, kCB);
  parallel_for(split.tasks(), threads, [&](int64_t t0, int64_t t1) {
    static thread_local Scratch<int32_t> dots;
    dots.get(static_cast<size_t>(OW * ld));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = t / split.chunks, ci = t % split.chunks;
      const int64_t n = row / OH, oh = row % OH;
      const int64_t c0 = ci * split.chunk, c1 = std::min(s.cout, c0 + split.chunk);
      const Geo g{a.x + n * s.h * s.w * s.words(), wt, s.h, s.w, s.words(), s.kh, s.kw, s.stride, s.pad, s.cin};
      conv_row(g, s, oh, c0, c1, dots.data(), ld);
      write_stage_avx2(a.stage, sp, dots.data(), ld, OW, row * OW, c0, c1, s.cout, a.out);
      apply_stage_tail(a.stage, OW, row * OW, c0, c1, s.cout, a.out);
    }
  });
}

void prepare_weights_avx512(const uint64_t* w, const BConvShape& s, PreparedWeights& p, int threads) {
  const int64_t blocks = (s.cout + kCB - 1) / kCB;
  p.nwords = static_cast<size_t>(blocks * kCB * s.kh * s.kw * s.words());
  p.words = aligned_words(p.nwords);
  relayout(w, s, p.words.get(), threads);
}

uint64_t popcount_loop_avx512(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
  __m512i total = _mm512_setzero_si512();
  for (int64_t it = 0; it < iters; ++it) {
    __m512i acc[4] = {total, _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int64_t i = 0; i + 32 <= words; i += 32)
      for (int u = 0; u < 4; ++u) {
        const __m512i x = _mm512_xor_si512(_mm512_loadu_si512(a + i + 8 * u), _mm512_loadu_si512(b + i + 8 * u));
        acc[u] = _mm512_add_epi64(acc[u], _mm512_popcnt_epi64(x));
      }
    total = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
    asm volatile("" : "+v"(total) : : "memory");
  }
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(total));
}

}  // namespace onebit::kernels
