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

template <int NC, bool Wide>
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
  // Masked: popcount((x XOR w) AND m) (a pruned layer's partial words), else popcount(x XOR w).
  template <bool Masked>
  inline void add(uint8x16_t xv, const uint64_t* const* w, const uint64_t* const* m, int64_t i) {
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      uint8x16_t d = veorq_u8(xv, vld1q_u8(reinterpret_cast<const uint8_t*>(w[j] + i)));
      if constexpr (Masked) d = vandq_u8(d, vld1q_u8(reinterpret_cast<const uint8_t*>(m[j] + i)));
      a8[j] = vaddq_u8(a8[j], vcntq_u8(d));
    }
  }
  template <bool Masked>
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
  template <bool Masked>
  inline void run(const uint64_t* x, const uint64_t* const* w, const uint64_t* const* m, int64_t L) {
    int64_t i = 0;
    const int64_t vectors = (L + 1) / 2;  // the odd last word counts as one vector
    for (int64_t done = 0; done < vectors;) {
      if (pending == kByteVectors) widen();
      const int64_t room = kByteVectors - pending;
      const int64_t chunk = vectors - done < room ? vectors - done : room;
      const int64_t end = i + 2 * chunk < L / 2 * 2 ? i + 2 * chunk : L / 2 * 2;
      for (; i < end; i += 2) add<Masked>(vld1q_u8(reinterpret_cast<const uint8_t*>(x + i)), w, m, i);
      if (i < L && done + chunk == vectors) {
        add_half<Masked>(x, w, m, i);
        ++i;
      }
      pending += chunk;
      done += chunk;
    }
  }
  // A row run of a compile-time length (the 3x3 layers' rows: 3 * W64 words): unrolled; the
  // byte lanes are widened before the row only if it would overflow them, so a small layer's
  // whole 3x3 window is widened once.
  template <int L, bool Masked>
  inline void run_fixed(const uint64_t* x, const uint64_t* const* w, const uint64_t* const* m) {
    static_assert((L + 1) / 2 <= kByteVectors, "a row fits the byte lanes");
    if (pending + (L + 1) / 2 > kByteVectors) widen();
#pragma GCC unroll 16
    for (int i = 0; i + 2 <= L; i += 2) add<Masked>(vld1q_u8(reinterpret_cast<const uint8_t*>(x + i)), w, m, i);
    if constexpr (L % 2 == 1) add_half<Masked>(x, w, m, L - 1);
    pending += (L + 1) / 2;
  }
  template <bool Masked>
  inline void row(const uint64_t* x, const uint64_t* const* w, const uint64_t* const* m, int64_t L) {
    switch (L) {
      case 3: run_fixed<3, Masked>(x, w, m); return;    // 3x3, 64 channels
      case 6: run_fixed<6, Masked>(x, w, m); return;    // 3x3, 128 channels
      case 12: run_fixed<12, Masked>(x, w, m); return;  // 3x3, 256 channels
      case 24: run_fixed<24, Masked>(x, w, m); return;  // 3x3, 512 channels
      default: run<Masked>(x, w, m, L);
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

template <int NC, bool Wide>
void block(const BConvArgs& a, const uint64_t* w, int64_t n, int64_t oh, int64_t ow, int64_t co, int32_t* y) {
  const BConvShape& s = a.s;
  const int64_t W64 = s.words();
  int64_t kh0, kh1, kw0, kw1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  tap_range(ow, s.stride, s.pad, s.kw, s.w, kw0, kw1);
  const int64_t run = (kw1 - kw0) * W64;
  const int64_t iw0 = ow * s.stride - s.pad + kw0;
  Dot<NC, Wide> dot;
  const uint64_t* wr[NC];
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const int64_t ih = oh * s.stride - s.pad + kh;
    const uint64_t* xr = a.x + ((n * s.h + ih) * s.w + iw0) * W64;
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) wr[j] = w + (((co + j) * s.kh + kh) * s.kw + kw0) * W64;
    dot.template row<false>(xr, wr, nullptr, run);
  }
  int32_t pc[NC];
  dot.totals(pc);
  const int32_t all = static_cast<int32_t>((kh1 - kh0) * (kw1 - kw0) * s.cin);
#pragma GCC unroll 8
  for (int j = 0; j < NC; ++j) y[j] = all - 2 * pc[j];
}

template <bool Wide>
void conv_row(const BConvArgs& a, const uint64_t* w, int64_t n, int64_t oh, int64_t c0, int64_t c1, int32_t* dots) {
  const int64_t OW = a.s.out_w(), ld = c1 - c0;
  for (int64_t ow = 0; ow < OW; ++ow) {
    int32_t* y = dots + ow * ld - c0;
    int64_t co = c0;
    for (; co + kChannels <= c1; co += kChannels) block<kChannels, Wide>(a, w, n, oh, ow, co, y + co);
    if (co + 4 <= c1 && kChannels > 4) {
      block<4, Wide>(a, w, n, oh, ow, co, y + co);
      co += 4;
    }
    for (; co < c1; ++co) block<1, Wide>(a, w, n, oh, ow, co, y + co);
  }
}

// One output pixel of one group of a pruned layer (PreparedWeights' ng_* layout): per kernel row
// in bounds, only the group's segments (clipped to the pixel's in-bounds kw taps) are read; full
// segments run the dense step, partial ones AND the mask. y[co] = kept - 2*pc for the group's
// channels co (y indexed by absolute channel).
template <int NC, bool Wide>
void group_pixel(const BConvArgs& a, const PreparedWeights& p, int64_t g, int64_t n, int64_t oh, int64_t ow,
                 int32_t* y) {
  const BConvShape& s = a.s;
  const int64_t W64 = s.words(), taps = s.kh * s.kw;
  int64_t kh0, kh1, kw0, kw1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  tap_range(ow, s.stride, s.pad, s.kw, s.w, kw0, kw1);
  const int64_t lo = kw0 * W64, hi = kw1 * W64;
  const int32_t* ch = p.ng_chan.data() + p.ng_first[static_cast<size_t>(g)];
  const uint64_t* w = p.words.get();
  const uint64_t* m = p.mask.get();
  Dot<NC, Wide> dot;
  int32_t kept[NC] = {};
  const uint64_t* wr[NC];
  const uint64_t* mr[NC];
  int64_t wrow[NC];
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const int64_t ih = oh * s.stride - s.pad + kh;
    // Word index (kw*W64 + wd) i of this kernel row is input word xrow + i.
    const int64_t xrow = ((n * s.h + ih) * s.w + ow * s.stride - s.pad) * W64;
    for (int j = 0; j < NC; ++j) {
      const int64_t t0 = ch[j] * taps + kh * s.kw;
      wrow[j] = t0 * W64;
      for (int64_t kw = kw0; kw < kw1; ++kw) kept[j] += p.ng_kept[static_cast<size_t>(t0 + kw)];
    }
    const int32_t* seg = p.ng_seg.data();
    for (int64_t i = p.ng_rows[static_cast<size_t>(g * s.kh + kh)]; i < p.ng_rows[static_cast<size_t>(g * s.kh + kh + 1)];
         ++i) {
      const int64_t b = seg[3 * i] > lo ? seg[3 * i] : lo, e = seg[3 * i + 1] < hi ? seg[3 * i + 1] : hi;
      if (b >= e) continue;
      const uint64_t* xr = a.x + xrow + b;
      for (int j = 0; j < NC; ++j) wr[j] = w + wrow[j] + b;
      if (seg[3 * i + 2]) {
        dot.template row<false>(xr, wr, nullptr, e - b);
      } else {
        for (int j = 0; j < NC; ++j) mr[j] = m + wrow[j] + b;
        dot.template row<true>(xr, wr, mr, e - b);
      }
    }
  }
  int32_t pc[NC];
  dot.totals(pc);
  for (int j = 0; j < NC; ++j) y[ch[j]] = kept[j] - 2 * pc[j];
}

template <bool Wide>
void masked_row(const BConvArgs& a, const PreparedWeights& p, int64_t n, int64_t oh, int64_t c0, int64_t c1,
                int32_t* dots) {
  const int64_t OW = a.s.out_w(), ld = c1 - c0;
  for (int64_t ow = 0; ow < OW; ++ow) {
    int32_t* y = dots + ow * ld - c0;
    for (int64_t sp = c0 / 64; sp < (c1 + 63) / 64; ++sp) {
      for (int32_t i = p.ng_dead_span[static_cast<size_t>(sp)]; i < p.ng_dead_span[static_cast<size_t>(sp + 1)]; ++i)
        y[p.ng_dead[static_cast<size_t>(i)]] = 0;  // no kept weight: y = 0 - 2*0
      for (int64_t g = p.ng_span[static_cast<size_t>(sp)]; g < p.ng_span[static_cast<size_t>(sp + 1)]; ++g) {
        const int32_t size = p.ng_first[static_cast<size_t>(g + 1)] - p.ng_first[static_cast<size_t>(g)];
        if (size == kChannels)
          group_pixel<kChannels, Wide>(a, p, g, n, oh, ow, y);
        else if (size == 4)
          group_pixel<4, Wide>(a, p, g, n, oh, ow, y);
        else
          group_pixel<1, Wide>(a, p, g, n, oh, ow, y);
      }
    }
  }
}

template <bool Masked>
void run(const BConvArgs& a, int threads) {
  const BConvShape& s = a.s;
  const uint64_t* w = a.prepared ? a.prepared->words.get() : a.w;
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
      if constexpr (Masked) {
        if (wide)
          masked_row<true>(a, *a.prepared, n, oh, c0, c1, dots.data());
        else
          masked_row<false>(a, *a.prepared, n, oh, c0, c1, dots.data());
      } else {
        if (wide)
          conv_row<true>(a, w, n, oh, c0, c1, dots.data());
        else
          conv_row<false>(a, w, n, oh, c0, c1, dots.data());
      }
      write_stage_neon(a.stage, dots.data(), c1 - c0, OW, row * OW, c0, c1, s.cout, a.out);
      apply_stage_tail(a.stage, OW, row * OW, c0, c1, s.cout, a.out);
    }
  });
}

}  // namespace

void bconv_neon(const BConvArgs& a, int threads) { run<false>(a, threads); }

void bconv_masked_neon(const BConvArgs& a, int threads) { run<true>(a, threads); }

int masked_group_channels_neon() { return kChannels; }

uint64_t popcount_loop_neon(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
  // Each step adds at most 16 to a 16-bit lane: widened into 32-bit lanes every kShortVectors steps.
  uint64_t total = 0;
  for (int64_t it = 0; it < iters; ++it) {
    uint32x4_t s32 = vdupq_n_u32(0);
    for (int64_t c0 = 0; c0 + 4 <= words; c0 += 4 * kShortVectors) {
      const int64_t c1 = c0 + 4 * kShortVectors < words ? c0 + 4 * kShortVectors : words;
      uint16x8_t s0 = vdupq_n_u16(0), s1 = vdupq_n_u16(0);
      for (int64_t i = c0; i + 4 <= c1; i += 4) {
        const uint8x16_t a0 = vld1q_u8(reinterpret_cast<const uint8_t*>(a + i));
        const uint8x16_t b0 = vld1q_u8(reinterpret_cast<const uint8_t*>(b + i));
        const uint8x16_t a1 = vld1q_u8(reinterpret_cast<const uint8_t*>(a + i + 2));
        const uint8x16_t b1 = vld1q_u8(reinterpret_cast<const uint8_t*>(b + i + 2));
        s0 = vpadalq_u8(s0, vcntq_u8(veorq_u8(a0, b0)));
        s1 = vpadalq_u8(s1, vcntq_u8(veorq_u8(a1, b1)));
      }
      s32 = vpadalq_u16(vpadalq_u16(s32, s0), s1);
    }
    const uint32x2_t h = vadd_u32(vget_low_u32(s32), vget_high_u32(s32));
    total += vget_lane_u32(vpadd_u32(h, h), 0);
    asm volatile("" : "+r"(total) : : "memory");  // keep every iteration
  }
  return total;
}

}  // namespace onebit::kernels
