// Scalar reference int8 convolution: the executable spec (direct loops, no packing).
#include <vector>

#include "onebit/kernels/conv8_kernels.h"
#include "onebit/kernels/output_stage.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {

void conv8_scalar(const Conv8Args& a, int threads) {
  const Conv8Geom& g = a.g;
  auto u8 = static_cast<const uint8_t*>(a.x);
  auto s8 = static_cast<const int8_t*>(a.x);
  parallel_for(g.n * g.oh, threads, [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> acc(g.cout);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        for (int64_t o = 0; o < g.cout; ++o) {
          int32_t s = 0;
          for (int i = 0; i < g.kh; ++i) {
            const int64_t iy = oy * g.sh - g.ph + i;
            if (iy < 0 || iy >= g.h) continue;  // padding = zero point = real 0
            for (int j = 0; j < g.kw; ++j) {
              const int64_t ix = ox * g.sw - g.pw + j;
              if (ix < 0 || ix >= g.w) continue;
              const int64_t xo = ((n * g.h + iy) * g.w + ix) * g.cin;
              const int8_t* wr = a.w + ((o * g.kh + i) * g.kw + j) * g.cin;
              for (int64_t c = 0; c < g.cin; ++c) {
                const int32_t v = (a.x_signed ? int32_t{s8[xo + c]} : int32_t{u8[xo + c]}) -
                                  a.zero_point[c];
                s += v * wr[c];
              }
            }
          }
          acc[o] = s;
        }
        write_stage_scalar(a.stage, acc.data(), g.cout, 1, r * g.ow + ox, 0, g.cout, g.cout, a.y);
        apply_stage_tail(a.stage, 1, r * g.ow + ox, 0, g.cout, g.cout, a.y);
      }
    }
  });
}

int64_t mac_loop_scalar(int64_t iters) {
  // The reference's inner loop: int32 += int32(x) * int8 w over one L1-resident row.
  constexpr int kLen = 1024;
  static int8_t x[kLen], w[kLen];
  for (int i = 0; i < kLen; ++i) {
    x[i] = static_cast<int8_t>(i * 37 + 11);
    w[i] = static_cast<int8_t>(i * 91 + 5);
  }
  int32_t s = 0;
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kLen; ++i) s += int32_t{x[i]} * w[i];
    asm volatile("" : "+r"(s));
  }
  volatile int32_t sink = s;
  (void)sink;
  return iters * kLen;
}

}  // namespace onebit::kernels
