// Scalar reference bitpack: bit = (x < 0), channel c -> word c/64 bit c%64, padding bits 0.
#include "onebit/bitpack.h"

namespace onebit::kernels {

namespace {
template <typename T>
void pack_rows(const T* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  const int64_t words = (c + 63) / 64;
  for (int64_t p = p0; p < p1; ++p) {
    const T* xp = x + p * c;
    uint64_t* op = out + p * words;
    for (int64_t wi = 0; wi < words; ++wi) {
      uint64_t word = 0;
      const int64_t end = (wi + 1) * 64 < c ? (wi + 1) * 64 : c;
      for (int64_t ch = wi * 64; ch < end; ++ch)
        word |= static_cast<uint64_t>(xp[ch] < 0) << (ch - wi * 64);
      op[wi] = word;
    }
  }
}
}  // namespace

void bitpack_f32_scalar(const float* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  pack_rows(x, p0, p1, c, out);
}
void bitpack_i8_scalar(const int8_t* x, int64_t p0, int64_t p1, int64_t c, uint64_t* out) {
  pack_rows(x, p0, p1, c, out);
}

}  // namespace onebit::kernels
