// Scalar reference int8 depthwise convolution: the executable spec (direct loops).
#include <vector>

#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/kernels/output_stage.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {

void dwconv8_scalar(const DwConv8Args& a, int threads) {
  const Conv8Geom& g = a.g;
  const int64_t c = g.cin;
  parallel_for(g.n * g.oh, threads_for(g.n * g.oh * g.ow * c * g.kh * g.kw, kDwMinWork, threads),
               [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> acc(static_cast<size_t>(g.ow * c));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        for (int64_t ch = 0; ch < c; ++ch) {
          int32_t s = 0;
          for (int i = 0; i < g.kh; ++i) {
            const int64_t iy = oy * g.sh - g.ph + i;
            if (iy < 0 || iy >= g.h) continue;  // padding = real 0
            for (int j = 0; j < g.kw; ++j) {
              const int64_t ix = ox * g.sw - g.pw + j;
              if (ix < 0 || ix >= g.w) continue;
              s += int32_t{a.x[((n * g.h + iy) * g.w + ix) * c + ch]} * a.w[(i * g.kw + j) * c + ch];
            }
          }
          acc[static_cast<size_t>(ox * c + ch)] = s;
        }
      }
      write_stage_scalar(a.stage, acc.data(), c, g.ow, r * g.ow, 0, c, c, a.y);
    }
  });
}

void dwconv_f32_scalar(const DwConvF32Args& a, int threads) {
  const Conv8Geom& g = a.g;
  const int64_t c = g.cin;
  parallel_for(g.n * g.oh, threads_for(g.n * g.oh * g.ow * c * g.kh * g.kw, kDwMinWork, threads),
               [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      for (int64_t ox = 0; ox < g.ow; ++ox)
        for (int64_t ch = 0; ch < c; ++ch) {
          float acc = 0.0f;
          for (int i = 0; i < g.kh; ++i) {
            const int64_t iy = oy * g.sh - g.ph + i;
            if (iy < 0 || iy >= g.h) continue;
            for (int j = 0; j < g.kw; ++j) {
              const int64_t ix = ox * g.sw - g.pw + j;
              if (ix < 0 || ix >= g.w) continue;
              const float prod = a.x[((n * g.h + iy) * g.w + ix) * c + ch] * a.w[(i * g.kw + j) * c + ch];
              acc = acc + prod;
            }
          }
          a.y[(r * g.ow + ox) * c + ch] = acc + a.bias[ch];
        }
    }
  });
}

}  // namespace onebit::kernels
