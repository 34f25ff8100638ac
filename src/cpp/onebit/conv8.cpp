// int8 convolution dispatcher: validation, the int32 accumulator proof, ISA choice.
#include "onebit/conv8.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "onebit/kernels/conv8_kernels.h"

namespace onebit {

int64_t conv8_out_per_pixel(const Conv8Geom& g, Conv8Out kind) {
  return kind == Conv8Out::bits ? (g.cout + 63) / 64 : g.cout;
}

void conv8_geom_finish(Conv8Geom& g) {
  if (g.n < 0) throw std::invalid_argument("int8 conv: negative batch size");
  if (g.h < 1 || g.w < 1) throw std::invalid_argument("int8 conv: input H and W must be >= 1");
  if (g.cin < 1) throw std::invalid_argument("int8 conv: input channels must be >= 1");
  if (g.cout < 1) throw std::invalid_argument("int8 conv: output channels must be >= 1");
  if (g.kh < 1 || g.kw < 1) throw std::invalid_argument("int8 conv: kernel size must be >= 1");
  if (g.sh < 1 || g.sw < 1) throw std::invalid_argument("int8 conv: stride must be >= 1");
  if (g.ph < 0 || g.pw < 0) throw std::invalid_argument("int8 conv: padding must be >= 0");
  if (g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw)
    throw std::invalid_argument("int8 conv: kernel " + std::to_string(g.kh) + "x" +
                                std::to_string(g.kw) + " is larger than the padded input " +
                                std::to_string(g.h + 2 * g.ph) + "x" +
                                std::to_string(g.w + 2 * g.pw));
  g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
}

void conv8(const Conv8Args& a, Isa isa, int threads) {
  if (threads < 0) throw std::invalid_argument("threads must be >= 1 (or 0/None for the default)");
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("ISA ") + isa_name(isa) +
                                " is not supported by this CPU/build");
  const Conv8Geom& g = a.g;
  if (g.oh < 1 || g.ow < 1) throw std::invalid_argument("int8 conv: geometry not finished");
  // Accumulator bound: |y| <= K * max|x - zp| * 128 must fit int32 (never overflow silently).
  const int32_t lo = a.x_signed ? -128 : 0, hi = a.x_signed ? 127 : 255;
  int64_t maxdiff = 0;
  for (int64_t c = 0; c < g.cin; ++c) {
    const int32_t z = a.zero_point[c];
    if (z < -255 || z > 255)
      throw std::invalid_argument("int8 conv: zero point " + std::to_string(z) + " of channel " +
                                  std::to_string(c) + " is outside [-255, 255]");
    maxdiff = std::max<int64_t>(maxdiff, std::max(std::abs(lo - z), std::abs(hi - z)));
  }
  const int64_t k = int64_t{g.kh} * g.kw * g.cin;
  if (k * maxdiff * 128 > int64_t{INT32_MAX})
    throw std::invalid_argument("int8 conv: K = " + std::to_string(k) +
                                " taps with |x - zero_point| up to " + std::to_string(maxdiff) +
                                " can overflow the int32 accumulator");
  const Conv8Stage& st = a.stage;
  switch (st.kind) {
    case Conv8Out::int32: break;
    case Conv8Out::bits:
      if (!st.threshold || !st.direction)
        throw std::invalid_argument("int8 conv: output 'bits' needs threshold and direction");
      for (int64_t o = 0; o < g.cout; ++o)
        if (st.direction[o] != 1 && st.direction[o] != -1)
          throw std::invalid_argument("int8 conv: direction values must be +1 or -1");
      break;
    case Conv8Out::int8:
      if (!st.multiplier || !st.bias)
        throw std::invalid_argument("int8 conv: output 'int8' needs multiplier, bias and shift");
      if (st.shift < 1 || st.shift > 31)
        throw std::invalid_argument("int8 conv: shift must be in [1, 31], got " +
                                    std::to_string(st.shift));
      break;
    case Conv8Out::f32:
      if (!st.scale || !st.fbias)
        throw std::invalid_argument("int8 conv: output 'float' needs scale and bias");
      break;
  }
  if (g.n == 0) return;
#if defined(ONEBIT_HAVE_X86)
  if (isa == Isa::avx512 && kernels::conv8_avx512(a, threads)) return;
  if (isa == Isa::avx2 || isa == Isa::avx512) return kernels::conv8_avx2(a, threads);
#endif
  kernels::conv8_scalar(a, threads);
}

}  // namespace onebit
