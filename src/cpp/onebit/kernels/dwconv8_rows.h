// The row loop every SIMD depthwise kernel (int8 and float) shares (internal linkage: each ISA
// unit compiles its own copy with its own flags). Per output row: for each output pixel, the
// in-bounds taps in row-major order (input pixel, tap index), then the ISA's pixel function
// (int8: fills the pixel's ld int32 sums in a row buffer; float: writes the pixel's outputs),
// then the row function (int8: the output stage of the row).
#pragma once
#include <cstdint>
#include <type_traits>

#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/kernels/scratch.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {
namespace {

// pixel(const T* const* xs, const int64_t* taps, int nt, int32_t* dots, int64_t r, int64_t ox):
// xs[t] points at the input pixel of in-bounds tap t (channel 0), taps[t] is its index i*kw + j;
// dots is the row buffer of ld int32 per pixel (ld = 0: none). row(const int32_t* dots, int64_t r)
// runs after the row's ow pixels (r = n*oh + oy).
template <class Args, class PixelFn, class RowFn>
void dw_rows(const Args& a, int64_t ld, int threads, PixelFn pixel, RowFn row) {
  using T = std::remove_const_t<std::remove_pointer_t<decltype(a.x)>>;
  const Conv8Geom& g = a.g;
  const int64_t c = g.cin, ktaps = int64_t{g.kh} * g.kw;
  parallel_for(g.n * g.oh, threads_for(g.n * g.oh * g.ow * c * ktaps, kDwMinWork, threads),
               [&](int64_t r0, int64_t r1) {
    static thread_local Scratch<int32_t> dots_buf;
    static thread_local Scratch<const T*> xs_buf;
    static thread_local Scratch<int64_t> taps_buf;
    int32_t* dots = dots_buf.get(static_cast<size_t>(g.ow * ld + 64));
    const T** xs = xs_buf.get(static_cast<size_t>(ktaps));
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
        pixel(xs, taps, nt, dots + ox * ld, r, ox);
      }
      row(dots, r);
    }
  });
}

// The weights (kh, kw, c) widened to T with each tap's channels zero padded to ld.
template <class T, class Args>
const T* dw_weights(const Args& a, int64_t ld, Scratch<T>& buf) {
  const int64_t c = a.g.cin, ktaps = int64_t{a.g.kh} * a.g.kw;
  T* w = buf.assign(static_cast<size_t>(ktaps * ld), T{0});
  for (int64_t t = 0; t < ktaps; ++t)
    for (int64_t ch = 0; ch < c; ++ch) w[t * ld + ch] = static_cast<T>(a.w[t * c + ch]);
  return w;
}

}  // namespace
}  // namespace onebit::kernels
