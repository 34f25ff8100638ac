// Scalar kernels of the bit-plane first layer (bplanes.h): the executable spec.
#include "onebit/bplanes.h"
#include "onebit/kernels/output_stage.h"
#include "onebit/kernels/scratch.h"

namespace onebit::kernels {

void bitplanes_scalar(const uint8_t* u, int64_t p0, int64_t p1, int64_t channels, const int32_t* planes,
                      int64_t nplanes, uint64_t* out) {
  const int64_t words = (nplanes + 63) / 64;
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

void planes_combine_scalar(const int32_t* acc, int64_t npix, int64_t cout, int bits, const OutputStage& st,
                           int64_t pix0, void* out) {
  static thread_local Scratch<int32_t> ybuf;
  int32_t* y = ybuf.get(static_cast<size_t>(cout));
  for (int64_t p = 0; p < npix; ++p) {
    const int32_t* a = acc + p * bits * cout;
    for (int64_t o = 0; o < cout; ++o) y[o] = a[o];
    // y = sum_j 2^j * y_j (|y| <= (2^M - 1) * K: no overflow for bounds the loader accepts)
    for (int j = 1; j < bits; ++j)
      for (int64_t o = 0; o < cout; ++o) y[o] += a[j * cout + o] * (int32_t{1} << j);
    write_stage_scalar(st, y, cout, 1, pix0 + p, 0, cout, cout, out);
  }
}

}  // namespace onebit::kernels
