// Scalar reference float32 dense layer; the summation order is the contract in onebit/densef.h.
#include "onebit/kernels/densef_kernels.h"

namespace onebit::kernels {

void dense_f32_scalar(const float* x, const float* w, const float* bias, float* y, int64_t n,
                      int64_t in, int64_t out, int64_t b0, int64_t b1) {
  const int64_t ob = (out + 3) / 4, chunk = dense_f32_chunk_rows(in);
  const int64_t in8 = (in + 7) / 8 * 8;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t r0 = b / ob * chunk, r1 = r0 + chunk < n ? r0 + chunk : n;
    const int64_t o0 = b % ob * 4, o1 = o0 + 4 < out ? o0 + 4 : out;
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* xr = x + r * in;
        const float* wr = w + o * in;
        float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        for (int64_t i = 0; i < in8; ++i) {
          const float p = i < in ? xr[i] * wr[i] : 0.0f;
          acc[i % 8] = acc[i % 8] + p;
        }
        const float s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        y[r * out + o] = s + bias[o];
      }
    }
  }
}

}  // namespace onebit::kernels
