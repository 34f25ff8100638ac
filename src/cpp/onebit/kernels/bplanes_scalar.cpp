// Scalar kernels of the bit-plane first layer (bplanes.h, bplanes_kernels.h): the executable spec.
#include "onebit/bplanes.h"
#include "onebit/kernels/bplanes_kernels.h"
#include "onebit/kernels/scratch.h"

namespace onebit::kernels {

void bitplanes_scalar(const uint8_t* u, int64_t p0, int64_t p1, int64_t channels, const int32_t* planes,
                      int64_t nplanes, uint64_t* out) {
  const int64_t words = (nplanes + 63) / 64;
  if (words == 1 && p1 - p0 >= 256) {
    // one word per pixel: per colour channel, a table of the word's bits for each byte value;
    // the pixel's word is the OR over its channels
    static thread_local Scratch<uint64_t> tab;
    uint64_t* t = tab.get(static_cast<size_t>(channels * 256));
    for (int64_t k = 0; k < channels * 256; ++k) t[k] = 0;
    for (int64_t i = 0; i < nplanes; ++i) {
      uint64_t* tc = t + (planes[i] >> 3) * 256;
      for (int v = 0; v < 256; ++v) tc[v] |= static_cast<uint64_t>(((v >> (planes[i] & 7)) & 1) ^ 1) << i;
    }
    for (int64_t p = p0; p < p1; ++p) {
      const uint8_t* px = u + p * channels;
      uint64_t word = 0;
      for (int64_t c = 0; c < channels; ++c) word |= t[c * 256 + px[c]];
      out[p] = word;
    }
    return;
  }
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* px = u + p * channels;
    uint64_t* o = out + p * words;
    for (int64_t wi = 0; wi < words; ++wi) {
      uint64_t word = 0;  // planes >= nplanes stay 0 (padding bits)
      for (int64_t i = wi * 64; i < wi * 64 + 64 && i < nplanes; ++i) {
        const int32_t id = planes[i];
        // bit 1 (= -1) where bit (id % 8) of channel id / 8 is 0
        const uint64_t neg = ((px[id >> 3] >> (id & 7)) & 1u) ^ 1u;
        word |= neg << (i - wi * 64);
      }
      o[wi] = word;
    }
  }
}

void planes_dot_scalar(const uint64_t* xw, const uint64_t* mw, const int32_t* nv, int64_t npix, int64_t ww,
                       const uint64_t* w, int64_t blocks, int bits, int32_t* y) {
  const int64_t top = (int64_t{1} << bits) - 1;
  for (int64_t p = 0; p < npix; ++p) {
    const uint64_t* x = xw + p * ww;
    const uint64_t* m = mw + p * ww;
    for (int64_t b = 0; b < blocks; ++b)
      for (int lane = 0; lane < 8; ++lane) {
        int64_t sum = 0;  // sum_j 2^j * popcount_j
        for (int j = 0; j < bits; ++j) {
          const uint64_t* wj = w + (b * bits + j) * ww * 8 + lane;
          int64_t c = 0;
          for (int64_t i = 0; i < ww; ++i) c += __builtin_popcountll((x[i] ^ wj[i * 8]) & m[i]);
          sum += c << j;
        }
        y[p * blocks * 8 + b * 8 + lane] = static_cast<int32_t>(top * nv[p] - 2 * sum);
      }
  }
}

}  // namespace onebit::kernels
