// The row loop every SIMD depthwise kernel shares (internal linkage: each ISA unit compiles its
// own copy with its own flags). Per output row: for each output pixel, the in-bounds taps (input
// pixel offset, tap index), then the ISA's pixel function fills the pixel's ld int32 sums
// (channels padded to the ISA's block), then the ISA's output stage writes the row.
#pragma once
#include <cstdint>

#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/kernels/scratch.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {
namespace {

// pixel(const int8_t* const* xs, const int64_t* taps, int ntaps, int32_t* dots): xs[t] points at
// the input pixel of in-bounds tap t (channel 0), taps[t] is its index i*kw + j.
// stage(const int32_t* dots, int64_t pix0): writes the row's ow pixels from dots (stride ld).
template <class PixelFn, class StageFn>
void dw_rows(const DwConv8Args& a, int64_t ld, int threads, PixelFn pixel, StageFn stage) {
  const Conv8Geom& g = a.g;
  const int64_t c = g.cin, ktaps = int64_t{g.kh} * g.kw;
  parallel_for(g.n * g.oh, threads_for(g.n * g.oh * g.ow * c * ktaps, kDwMinWork, threads),
               [&](int64_t r0, int64_t r1) {
    static thread_local Scratch<int32_t> dots_buf;
    static thread_local Scratch<const int8_t*> xs_buf;
    static thread_local Scratch<int64_t> taps_buf;
    int32_t* dots = dots_buf.get(static_cast<size_t>(g.ow * ld + 64));
    const int8_t** xs = xs_buf.get(static_cast<size_t>(ktaps));
    int64_t* taps = taps_buf.get(static_cast<size_t>(ktaps));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        int nt = 0;
        for (int i = 0; i < g.kh; ++i) {
          const int64_t iy = oy * g.sh - g.ph + i;
          if (iy < 0 || iy >= g.h) continue;  // padding = real 0: adds nothing
          for (int j = 0; j < g.kw; ++j) {
            const int64_t ix = ox * g.sw - g.pw + j;
            if (ix < 0 || ix >= g.w) continue;
            xs[nt] = a.x + ((n * g.h + iy) * g.w + ix) * c;
            taps[nt++] = int64_t{i} * g.kw + j;
          }
        }
        pixel(xs, taps, nt, dots + ox * ld);
      }
      stage(dots, r * g.ow);
    }
  });
}

// The weights (kh, kw, c) widened to T with each tap's channels zero padded to ld.
template <class T>
const T* dw_weights(const DwConv8Args& a, int64_t ld, Scratch<T>& buf) {
  const int64_t c = a.g.cin, ktaps = int64_t{a.g.kh} * a.g.kw;
  T* w = buf.assign(static_cast<size_t>(ktaps * ld), T{0});
  for (int64_t t = 0; t < ktaps; ++t)
    for (int64_t ch = 0; ch < c; ++ch) w[t * ld + ch] = static_cast<T>(a.w[t * c + ch]);
  return w;
}

}  // namespace
}  // namespace onebit::kernels
