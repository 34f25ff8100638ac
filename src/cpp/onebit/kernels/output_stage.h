// Fused output stages, scalar form: the executable spec every SIMD writer must equal bit for bit.
// Shared by all kernel translation units; everything has internal linkage (anonymous namespace)
// so that TUs compiled with different ISA flags never share one inline definition (ODR).
//
// Folding math (docs/format.md §5), per output channel c, y = binary dot product:
// (a) BN then sign: z = gamma*(y - mu)/sigma + beta; z >= 0 <=> y >= ceil(tau) for gamma > 0,
//     y <= floor(tau) for gamma < 0, tau = mu - beta*sigma/gamma. The converter stores t, d:
//     bit = (y < t) if d = +1 and bit = (y > t) if d = -1 (bit 1 means -1).
// (b) BN then clip block (BNN-Clip, Vorabbi et al.): q = clamp(round(z / s), -127, 127) folded
//     to fixed point q = clamp((y*M + B + 2^(S-1)) >> S, -127, 127), int64, rounds half up.
// (c) float: out = float32(y) * scale + bias, multiply then add (the build uses
//     -ffp-contract=off so the two roundings match PyTorch's y.float() * scale + bias).
#pragma once
#include <cstdint>
#include <cstring>

#include "onebit/output.h"

namespace onebit::kernels {
namespace {

inline bool stage_bit(int32_t y, int32_t t, int8_t d) { return d > 0 ? (y < t) : (y > t); }

inline int8_t stage_int8(int32_t y, int32_t m, int32_t b, int s) {
  int64_t v = static_cast<int64_t>(y) * m + b + (int64_t{1} << (s - 1));
  v >>= s;  // arithmetic shift (floor division by 2^S)
  if (v > 127) v = 127;
  if (v < -127) v = -127;
  return static_cast<int8_t>(v);
}

inline float stage_float(int32_t y, float scale, float bias) {
  float p = static_cast<float>(y) * scale;
  return p + bias;
}

// Writes the output stage for `npix` consecutive output pixels starting at flat pixel index
// `pix0` (over N*OH*OW) and channels [c0, c1). dots[p*ld + (c - c0)] holds y.
// For bits, c0 is a multiple of 64 and c1 is either a multiple of 64 or cout.
inline void write_stage_scalar(const OutputStage& st, const int32_t* dots, int64_t ld,
                               int64_t npix, int64_t pix0, int64_t c0, int64_t c1, int64_t cout,
                               void* out) {
  for (int64_t p = 0; p < npix; ++p) {
    const int32_t* y = dots + p * ld - c0;  // y[c] for c in [c0, c1)
    const int64_t pix = pix0 + p;
    switch (st.kind) {
      case OutputKind::int32: {
        int32_t* o = static_cast<int32_t*>(out) + pix * cout;
        for (int64_t c = c0; c < c1; ++c) o[c] = y[c];
        break;
      }
      case OutputKind::bits: {
        const int64_t words = (cout + 63) / 64;
        uint64_t* o = static_cast<uint64_t*>(out) + pix * words;
        for (int64_t wi = c0 / 64; wi * 64 < c1; ++wi) {
          uint64_t word = 0;  // channels >= cout stay 0 (padding bits)
          for (int64_t c = wi * 64; c < wi * 64 + 64 && c < c1; ++c)
            word |= static_cast<uint64_t>(stage_bit(y[c], st.threshold[c], st.direction[c])) << (c - wi * 64);
          o[wi] = word;
        }
        break;
      }
      case OutputKind::int8: {
        int8_t* o = static_cast<int8_t*>(out) + pix * cout;
        for (int64_t c = c0; c < c1; ++c) o[c] = stage_int8(y[c], st.multiplier[c], st.bias[c], st.shift);
        break;
      }
      case OutputKind::f32: {
        float* o = static_cast<float*>(out) + pix * cout;
        for (int64_t c = c0; c < c1; ++c) o[c] = stage_float(y[c], st.scale[c], st.fbias[c]);
        break;
      }
    }
  }
}

}  // namespace
}  // namespace onebit::kernels
