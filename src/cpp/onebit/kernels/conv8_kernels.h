// Per-ISA int8 convolution kernels (declarations) and the shared scalar output stage.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "onebit/conv8.h"

namespace onebit::kernels {

// Internal linkage: compiled with different ISA flags per translation unit (see pool_kernels.h).
namespace {

// Applies the output stage to the int32 accumulators of output channels [o0, o1) of one pixel.
// For bits, o0 and o1 must be multiples of 64 or o1 = cout; words are written whole.
inline void conv8_stage_scalar(const int32_t* acc, int64_t o0, int64_t o1, const Conv8Stage& st,
                               void* out_pixel) {
  switch (st.kind) {
    case Conv8Out::int32: {
      auto out = static_cast<int32_t*>(out_pixel);
      for (int64_t o = o0; o < o1; ++o) out[o] = acc[o];
      break;
    }
    case Conv8Out::bits: {
      auto out = static_cast<uint64_t*>(out_pixel);
      for (int64_t base = o0; base < o1; base += 64) {
        uint64_t word = 0;
        const int64_t end = std::min<int64_t>(o1, base + 64);
        for (int64_t o = base; o < end; ++o) {
          // bit 1 = -1: (y < t) for d = +1 (gamma > 0), (y > t) for d = -1 (gamma < 0).
          const bool neg = st.direction[o] > 0 ? acc[o] < st.threshold[o] : acc[o] > st.threshold[o];
          word |= uint64_t{neg} << (o - base);
        }
        out[base / 64] = word;
      }
      break;
    }
    case Conv8Out::int8: {
      auto out = static_cast<int8_t*>(out_pixel);
      const int64_t rnd = int64_t{1} << (st.shift - 1);
      for (int64_t o = o0; o < o1; ++o) {
        const int64_t q = (int64_t{acc[o]} * st.multiplier[o] + st.bias[o] + rnd) >> st.shift;
        out[o] = static_cast<int8_t>(std::min<int64_t>(127, std::max<int64_t>(-127, q)));
      }
      break;
    }
    case Conv8Out::f32: {
      auto out = static_cast<float*>(out_pixel);
      for (int64_t o = o0; o < o1; ++o) {
        const float p = static_cast<float>(acc[o]) * st.scale[o];
        out[o] = p + st.fbias[o];
      }
      break;
    }
  }
}

inline size_t conv8_out_elem_size(Conv8Out kind) {
  switch (kind) {
    case Conv8Out::int32: return 4;
    case Conv8Out::bits: return 8;
    case Conv8Out::int8: return 1;
    case Conv8Out::f32: return 4;
  }
  return 4;
}

}  // namespace

void conv8_scalar(const Conv8Args& a, int threads);
#if defined(ONEBIT_HAVE_X86)
void conv8_avx2(const Conv8Args& a, int threads);
// Vectorized output stage of one pixel (all cout channels); dirneg[o] = -1 where d[o] < 0.
void conv8_stage_avx2(const int32_t* acc, const Conv8Stage& st, int64_t cout, const int32_t* dirneg,
                      void* out_pixel);
// Returns false (doing nothing) when the zero points do not fit the unsigned formulation.
bool conv8_avx512(const Conv8Args& a, int threads);
#endif

}  // namespace onebit::kernels
