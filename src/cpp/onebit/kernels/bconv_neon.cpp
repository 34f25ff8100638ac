// NEON binary direct convolution (aarch64 and 32-bit ARM with NEON; one source), in the style
// of Vorabbi, Maltoni and Santi's BNN-Clip data flow:
//  - per 128-bit vector: XOR (and AND with the mask for pruned layers), vcntq_u8 (popcount per
//    byte), vaddq_u8 into byte lanes (at most 31 vectors: 31 * 8 <= 255), then vpadalq_u8
//    (pairwise widening add into eight 16-bit lanes) only before the byte lanes could overflow
//    (a 64- or 128-channel 3x3 window: once per output pixel);
//  - the 16-bit lanes are widened to 32 bits (vpadalq_u16) only when the static bound requires
//    it: a dot product over K <= 32767 bits (accumulator_bits(K) == 16) has a popcount <= K, so
//    no lane can overflow and the lanes are widened once, at the end. For larger K the lanes are
//    flushed into 32-bit lanes every 4092 vectors (each vector adds at most 16 to a lane).
// No im2col: with NHWC packed input and (Cout,KH,KW,W64) weights, the in-bounds taps of one
// kernel row are one contiguous run of (kw1-kw0)*W64 words in both x and w, so every kernel row
// is a single streamed dot product; the 3x3 layers' runs (3*W64 words, W64 = 1, 2, 4, 8) have
// unrolled fast paths, other lengths the generic loop. One input vector is reused for 8 output
// channels on aarch64, 4 on 32-bit ARM. The result y = kept - 2*popcount (kept = in-bounds taps * Cin,
// or the kept weights of a pruned layer) goes through the scalar output stage writer.
#include <arm_neon.h>


#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_neon.h"
#include "onebit/kernels/output_stage.h"
#include "onebit/kernels/scratch.h"

namespace onebit::kernels {
namespace {

constexpr int64_t kByteVectors = 31;     // 8-bit lanes: 31 * 8 = 248 <= 255
constexpr int64_t kShortVectors = 4092;  // 16-bit lanes: 132 flushes of 31 vectors, 4092 * 16 <= 65535

// Output channels sharing one input vector: 8 on aarch64 (32 vector registers), 4 on 32-bit
// ARM (16 quad registers: 4 byte + 4 short accumulators, the input and temporaries).
#if defined(__aarch64__)
constexpr int kChannels = 8;
#else
constexpr int kChannels = 4;
#endif

template <int NC, bool Masked, bool Wide>
struct Dot {
  uint8x16_t a8[NC];
  uint16x8_t a16[NC];
  uint32x4_t a32[NC];
  int64_t since = 0;    // vectors in a16 since its last flush (Wide only)
  int64_t pending = 0;  // vectors in a8 since its last widening (<= kByteVectors)

  Dot() {
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      a8[j] = vdupq_n_u8(0);
      a16[j] = vdupq_n_u16(0);
      a32[j] = vdupq_n_u32(0);
    }
  }
  // Byte lanes -> 16-bit lanes (pairwise widening add); for K > 32767 the 16-bit lanes go on to
  // 32-bit lanes before they could overflow.
  inline void widen() {
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      a16[j] = vpadalq_u8(a16[j], a8[j]);
      a8[j] = vdupq_n_u8(0);
    }
    const int64_t vectors = pending;
    pending = 0;
    if constexpr (Wide) {
      since += vectors;
      if (since + kByteVectors > kShortVectors) {
#pragma GCC unroll 8
        for (int j = 0; j < NC; ++j) {
          a32[j] = vpadalq_u16(a32[j], a16[j]);
          a16[j] = vdupq_n_u16(0);
        }
        since = 0;
      }
    }
  }
  inline void add(uint8x16_t xv, const uint64_t* const* w, const uint64_t* const* m, int64_t i) {
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      uint8x16_t d = veorq_u8(xv, vld1q_u8(reinterpret_cast<const uint8_t*>(w[j] + i)));
      if constexpr (Masked) d = vandq_u8(d, vld1q_u8(reinterpret_cast<const uint8_t*>(m[j] + i)));
      a8[j] = vaddq_u8(a8[j], vcntq_u8(d));
    }
  }
  inline void add_half(const uint64_t* x, const uint64_t* const* w, const uint64_t* const* m, int64_t i) {
    const uint8x8_t xv = vld1_u8(reinterpret_cast<const uint8_t*>(x + i));
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      uint8x8_t d = veor_u8(xv, vld1_u8(reinterpret_cast<const uint8_t*>(w[j] + i)));
      if constexpr (Masked) d = vand_u8(d, vld1_u8(reinterpret_cast<const uint8_t*>(m[j] + i)));
      a8[j] = vaddq_u8(a8[j], vcombine_u8(vcnt_u8(d), vdup_n_u8(0)));
    }
  }
  // Popcount of x[0, L) against w[j][0, L) (and m[j]) added to channel j's lanes; L words.
  // The byte lanes are widened whenever the next vectors could overflow them.
  inline void run(const uint64_t* x, const uint64_t* const* w, const uint64_t* const* m, int64_t L) {
    int64_t i = 0;
    const int64_t vectors = (L + 1) / 2;  // the odd last word counts as one vector
    for (int64_t done = 0; done < vectors;) {
      if (pending == kByteVectors) widen();
      const int64_t room = kByteVectors - pending;
      const int64_t chunk = vectors - done < room ? vectors - done : room;
      const int64_t end = i + 2 * chunk < L / 2 * 2 ? i + 2 * chunk : L / 2 * 2;
      for (; i < end; i += 2) add(vld1q_u8(reinterpret_cast<const uint8_t*>(x + i)), w, m, i);
      if (i < L && done + chunk == vectors) {
        add_half(x, w, m, i);
        ++i;
      }
      pending += chunk;
      done += chunk;
    }
  }
  // A row run of a compile-time length (the 3x3 layers' rows: 3 * W64 words): unrolled; the
  // byte lanes are widened before the row only if it would overflow them, so a small layer's
  // whole 3x3 window is widened once.
  template <int L>
  inline void run_fixed(const uint64_t* x, const uint64_t* const* w, const uint64_t* const* m) {
    static_assert((L + 1) / 2 <= kByteVectors, "a row fits the byte lanes");
    if (pending + (L + 1) / 2 > kByteVectors) widen();
#pragma GCC unroll 16
    for (int i = 0; i + 2 <= L; i += 2) add(vld1q_u8(reinterpret_cast<const uint8_t*>(x + i)), w, m, i);
    if constexpr (L % 2 == 1) add_half(x, w, m, L - 1);
    pending += (L + 1) / 2;
  }
  inline void row(const uint64_t* x, const uint64_t* const* w, const uint64_t* const* m, int64_t L) {
    switch (L) {
      case 3: run_fixed<3>(x, w, m); return;    // 3x3, 64 channels
      case 6: run_fixed<6>(x, w, m); return;    // 3x3, 128 channels
      case 12: run_fixed<12>(x, w, m); return;  // 3x3, 256 channels
      case 24: run_fixed<24>(x, w, m); return;  // 3x3, 512 channels
      default: run(x, w, m, L);
    }
  }
  void totals(int32_t* pc) {
    if (pending) widen();
    if constexpr (!Wide && NC % 4 == 0) {
      // Every 16-bit lane sum is <= K <= 32767: reduce four channels at once in 16 bits
      // (halves added, then two rounds of pairwise adds), widen the four sums once.
#pragma GCC unroll 2
      for (int j = 0; j < NC; j += 4) {
        uint16x4_t h[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) h[k] = vadd_u16(vget_low_u16(a16[j + k]), vget_high_u16(a16[j + k]));
        const uint16x4_t q = vpadd_u16(vpadd_u16(h[0], h[1]), vpadd_u16(h[2], h[3]));
        vst1q_s32(pc + j, vreinterpretq_s32_u32(vmovl_u16(q)));
      }
    } else {
#pragma GCC unroll 8
      for (int j = 0; j < NC; ++j) {
        const uint32x4_t v = Wide ? vpadalq_u16(a32[j], a16[j]) : vpaddlq_u16(a16[j]);
        const uint32x2_t h = vadd_u32(vget_low_u32(v), vget_high_u32(v));
        pc[j] = static_cast<int32_t>(vget_lane_u32(vpadd_u32(h, h), 0));
      }
    }
  }
};

struct Layer {
  const uint64_t* w = nullptr;
  const uint64_t* m = nullptr;
  Scratch<int32_t> kept;  // pruned layers: kept weights per (co, kh, kw)
};

template <int NC, bool Masked, bool Wide>
void block(const BConvArgs& a, const Layer& L, int64_t n, int64_t oh, int64_t ow, int64_t co, int32_t* y) {
  const BConvShape& s = a.s;
  const int64_t W64 = s.words();
  int64_t kh0, kh1, kw0, kw1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  tap_range(ow, s.stride, s.pad, s.kw, s.w, kw0, kw1);
  const int64_t run = (kw1 - kw0) * W64;
  const int64_t iw0 = ow * s.stride - s.pad + kw0;
  Dot<NC, Masked, Wide> dot;
  int32_t kept[NC] = {};
  const uint64_t* wr[NC];
  const uint64_t* mr[NC];
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const int64_t ih = oh * s.stride - s.pad + kh;
    const uint64_t* xr = a.x + ((n * s.h + ih) * s.w + iw0) * W64;
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      const int64_t t0 = ((co + j) * s.kh + kh) * s.kw + kw0;
      wr[j] = L.w + t0 * W64;
      mr[j] = Masked ? L.m + t0 * W64 : nullptr;
      if constexpr (Masked)
        for (int64_t t = t0; t < t0 + (kw1 - kw0); ++t) kept[j] += L.kept[static_cast<size_t>(t)];
    }
    dot.row(xr, wr, mr, run);
  }
  int32_t pc[NC];
  dot.totals(pc);
  const int32_t all = static_cast<int32_t>((kh1 - kh0) * (kw1 - kw0) * s.cin);
#pragma GCC unroll 8
  for (int j = 0; j < NC; ++j) y[j] = (Masked ? kept[j] : all) - 2 * pc[j];
}

template <bool Masked, bool Wide>
void conv_row(const BConvArgs& a, const Layer& L, int64_t n, int64_t oh, int64_t c0, int64_t c1, int32_t* dots) {
  const int64_t OW = a.s.out_w(), ld = c1 - c0;
  for (int64_t ow = 0; ow < OW; ++ow) {
    int32_t* y = dots + ow * ld - c0;
    int64_t co = c0;
    for (; co + kChannels <= c1; co += kChannels) block<kChannels, Masked, Wide>(a, L, n, oh, ow, co, y + co);
    if (co + 4 <= c1 && kChannels > 4) {
      block<4, Masked, Wide>(a, L, n, oh, ow, co, y + co);
      co += 4;
    }
    for (; co < c1; ++co) block<1, Masked, Wide>(a, L, n, oh, ow, co, y + co);
  }
}

template <bool Masked>
void run(const BConvArgs& a, int threads) {
  const BConvShape& s = a.s;
  Layer L;
  L.w = a.prepared ? a.prepared->words.get() : a.w;
  if constexpr (Masked) {
    L.m = a.prepared ? a.prepared->mask.get() : a.weight_mask;
    const int64_t taps = s.cout * s.kh * s.kw, W64 = s.words();
    L.kept.get(static_cast<size_t>(taps));
    for (int64_t t = 0; t < taps; ++t) {
      int32_t k = 0;
      for (int64_t wd = 0; wd < W64; ++wd) k += __builtin_popcountll(L.m[t * W64 + wd]);
      L.kept[static_cast<size_t>(t)] = k;
    }
  }
  const TaskSplit split = split_tasks(s, threads);
  const int64_t OH = s.out_h(), OW = s.out_w();
  const bool wide = accumulator_bits(s.k_bits()) == 32;
  parallel_for(split.tasks(), threads, [&](int64_t t0, int64_t t1) {
    Scratch<int32_t> dots;
    dots.get(static_cast<size_t>(OW * split.chunk));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = t / split.chunks, ci = t % split.chunks;
      const int64_t n = row / OH, oh = row % OH;
      const int64_t c0 = ci * split.chunk, c1 = c0 + split.chunk < s.cout ? c0 + split.chunk : s.cout;
      if (wide)
        conv_row<Masked, true>(a, L, n, oh, c0, c1, dots.data());
      else
        conv_row<Masked, false>(a, L, n, oh, c0, c1, dots.data());
      write_stage_neon(a.stage, dots.data(), c1 - c0, OW, row * OW, c0, c1, s.cout, a.out);
    }
  });
}

}  // namespace

void bconv_neon(const BConvArgs& a, int threads) { run<false>(a, threads); }

void bconv_masked_neon(const BConvArgs& a, int threads) { run<true>(a, threads); }

uint64_t popcount_loop_neon(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
  uint64_t total = 0;
  for (int64_t it = 0; it < iters; ++it) {
    uint16x8_t s0 = vdupq_n_u16(0), s1 = vdupq_n_u16(0);
    for (int64_t i = 0; i + 4 <= words; i += 4) {
      const uint8x16_t a0 = vld1q_u8(reinterpret_cast<const uint8_t*>(a + i));
      const uint8x16_t b0 = vld1q_u8(reinterpret_cast<const uint8_t*>(b + i));
      const uint8x16_t a1 = vld1q_u8(reinterpret_cast<const uint8_t*>(a + i + 2));
      const uint8x16_t b1 = vld1q_u8(reinterpret_cast<const uint8_t*>(b + i + 2));
      s0 = vpadalq_u8(s0, vcntq_u8(veorq_u8(a0, b0)));
      s1 = vpadalq_u8(s1, vcntq_u8(veorq_u8(a1, b1)));
    }
    const uint32x4_t v = vaddq_u32(vpaddlq_u16(s0), vpaddlq_u16(s1));
    const uint32x2_t h = vadd_u32(vget_low_u32(v), vget_high_u32(v));
    total += vget_lane_u32(vpadd_u32(h, h), 0);
    asm volatile("" : "+r"(total) : : "memory");  // keep every iteration
  }
  return total;
}

}  // namespace onebit::kernels
