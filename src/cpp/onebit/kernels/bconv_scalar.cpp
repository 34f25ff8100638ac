// Scalar reference binary direct convolution: the executable spec the SIMD kernels must equal.
// No im2col: for every output pixel and channel it walks the in-bounds taps directly.
//
// Accumulator: a tap contributes Cin - 2*popcount(x XOR w) in [-Cin, Cin]; running sums over
// taps stay in [-T*Cin, T*Cin] with T <= KH*KW, so an int16 accumulator is exact whenever
// K = KH*KW*Cin <= 32767 and int32 is used otherwise (the choice is made from K).
//
// Masked (pruned) layers, the spec of the AVX2 masked kernel: weights are ternary, mask bit 0 =
// pruned weight (value 0), bit 1 = kept weight (+1 / -1 from the weight bit). A tap contributes
//   kept(tap) - 2 * popcount((x XOR w) AND m)      in [-kept(tap), kept(tap)],
// kept(tap) = popcount of the tap's mask words (channel padding bits are 0), and only in-bounds
// taps count (TRUE-ZERO padding). |partial sums| <= kept weights <= K, so the same accumulator
// choice stays exact.
//
// One-padding (s.pad_value = 1): every tap counts, an out-of-bounds one reads a zero word per
// input word (bit 0 = +1), so it contributes kept(tap) - 2*popcount(w AND m) = kept - 2*popcount(w)
// (canonical weights): the partial sums stay within [-K, K].
#include <vector>

#include "onebit/kernels/bconv_common.h"
#include "onebit/kernels/output_stage.h"

namespace onebit::kernels {
namespace {

template <bool Masked, typename Acc>
void conv_row(const BConvArgs& a, int64_t n, int64_t oh, int64_t c0, int64_t c1, const uint64_t* zeros,
              int32_t* dots) {
  const BConvShape& s = a.s;
  const int64_t W64 = s.words(), OW = s.out_w(), ld = c1 - c0;
  const bool ones = s.pad_value == 1;  // one-padding: out-of-bounds taps read `zeros` (+1)
  int64_t kh0, kh1;
  tap_range(oh, s.stride, s.pad, s.kh, s.h, kh0, kh1);
  if (ones) kh0 = 0, kh1 = s.kh;
  for (int64_t ow = 0; ow < OW; ++ow) {
    int64_t kw0, kw1;
    tap_range(ow, s.stride, s.pad, s.kw, s.w, kw0, kw1);
    if (ones) kw0 = 0, kw1 = s.kw;
    for (int64_t co = c0; co < c1; ++co) {
      Acc acc = 0;
      for (int64_t kh = kh0; kh < kh1; ++kh) {
        const int64_t ih = oh * s.stride - s.pad + kh;
        for (int64_t kw = kw0; kw < kw1; ++kw) {
          const int64_t iw = ow * s.stride - s.pad + kw;
          const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
          const uint64_t* xp = inside ? a.x + ((n * s.h + ih) * s.w + iw) * W64 : zeros;
          const int64_t wo = ((co * s.kh + kh) * s.kw + kw) * W64;
          const uint64_t* wp = a.w + wo;
          int32_t pc = 0, kept = static_cast<int32_t>(s.cin);
          if constexpr (Masked) {
            const uint64_t* mp = a.weight_mask + wo;
            kept = 0;
            for (int64_t wd = 0; wd < W64; ++wd) {
              pc += __builtin_popcountll((xp[wd] ^ wp[wd]) & mp[wd]);
              kept += __builtin_popcountll(mp[wd]);
            }
          } else {
            for (int64_t wd = 0; wd < W64; ++wd) pc += __builtin_popcountll(xp[wd] ^ wp[wd]);
          }
          acc = static_cast<Acc>(acc + static_cast<Acc>(kept - 2 * pc));
        }
      }
      dots[ow * ld + (co - c0)] = acc;
    }
  }
}

template <bool Masked>
void run(const BConvArgs& a, int threads) {
  const BConvShape& s = a.s;
  const TaskSplit split = split_tasks(s, threads);
  const int64_t OH = s.out_h(), OW = s.out_w();
  const bool narrow = accumulator_bits(s.k_bits()) == 16;
  const std::vector<uint64_t> zeros(static_cast<size_t>(s.words()), 0);  // a +1 pixel
  parallel_for(split.tasks(), threads, [&](int64_t t0, int64_t t1) {
    std::vector<int32_t> dots(static_cast<size_t>(OW * split.chunk));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = t / split.chunks, ci = t % split.chunks;
      const int64_t n = row / OH, oh = row % OH;
      const int64_t c0 = ci * split.chunk, c1 = std::min(s.cout, c0 + split.chunk);
      if (narrow)
        conv_row<Masked, int16_t>(a, n, oh, c0, c1, zeros.data(), dots.data());
      else
        conv_row<Masked, int32_t>(a, n, oh, c0, c1, zeros.data(), dots.data());
      write_stage_scalar(a.stage, dots.data(), c1 - c0, OW, row * OW, c0, c1, s.cout, a.out);
      apply_stage_tail(a.stage, OW, row * OW, c0, c1, s.cout, a.out);
    }
  });
}

}  // namespace

void bconv_scalar(const BConvArgs& a, int threads) { run<false>(a, threads); }

void bconv_masked_scalar(const BConvArgs& a, int threads) { run<true>(a, threads); }

uint64_t popcount_loop_scalar(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters) {
  uint64_t total = 0;
  for (int64_t it = 0; it < iters; ++it) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = 0; i + 4 <= words; i += 4) {
      s0 += __builtin_popcountll(a[i] ^ b[i]);
      s1 += __builtin_popcountll(a[i + 1] ^ b[i + 1]);
      s2 += __builtin_popcountll(a[i + 2] ^ b[i + 2]);
      s3 += __builtin_popcountll(a[i + 3] ^ b[i + 3]);
    }
    total += s0 + s1 + s2 + s3;
    asm volatile("" : "+r"(total) : : "memory");  // keep every iteration
  }
  return total;
}

}  // namespace onebit::kernels
