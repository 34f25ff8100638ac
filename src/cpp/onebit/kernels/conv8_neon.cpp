// NEON int8 convolution (aarch64 and 32-bit ARM with NEON; one source). Weights are OHWI, so
// output channel o's weights over (kh, kw, cin) are one contiguous row of K = kh*kw*cin values,
// in the order of the pixel's patch. Per output pixel the kernel gathers the patch once, then
// takes one dot product per output channel, 4 channels per patch load:
//  - baseline: patch = x - zp as int16 (0 for padded taps: padding is the zero point), weights
//    widened to int16, vmlal_s16 into int32 lanes (exact: the dispatcher proves
//    K * max|x - zp| * 128 <= 2^31 - 1, which bounds every partial sum as well);
//  - SDOT (aarch64 with the Armv8.2 dot product, HWCAP_ASIMDDP; kernels/conv8_neondot.cpp):
//    patch of signed bytes xs = x - 128 (uint8 input) or x (int8 input), padded taps filled
//    with zs = zp - 128 (or zp), so sum (x - zp) * w = sum xs * w - corr[o] with
//    corr[o] = sum zs * w over all taps (mod 2^32, exact because y fits int32); used when
//    every zs fits a signed byte, else the baseline.
// Rows are padded to a multiple of 16 (SDOT) or 8 (baseline) with zero weights, once per call.
// The output stage is the NEON writer (kernels/output_neon.h).
#include <arm_neon.h>

#include "onebit/isa.h"
#include "onebit/kernels/conv8_kernels.h"
#include "onebit/kernels/output_neon.h"
#include "onebit/kernels/scratch.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {

namespace {

inline int32_t hsum(int32x4_t v) {
  const int32x2_t h = vadd_s32(vget_low_s32(v), vget_high_s32(v));
  return vget_lane_s32(vpadd_s32(h, h), 0);
}

// acc[o] = sum_k patch[k] * w[o*K8 + k] over K8 (a multiple of 8) int16 x int8 products.
void dots_baseline(const int16_t* patch, const int8_t* w, int64_t K8, int64_t cout, int32_t* acc) {
  int64_t o = 0;
  for (; o + 4 <= cout; o += 4) {
    int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (int64_t k = 0; k < K8; k += 8) {
      const int16x8_t p = vld1q_s16(patch + k);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const int16x8_t wv = vmovl_s8(vld1_s8(w + (o + j) * K8 + k));
        s[j] = vmlal_s16(s[j], vget_low_s16(p), vget_low_s16(wv));
        s[j] = vmlal_s16(s[j], vget_high_s16(p), vget_high_s16(wv));
      }
    }
    for (int j = 0; j < 4; ++j) acc[o + j] = hsum(s[j]);
  }
  for (; o < cout; ++o) {
    int32x4_t s = vdupq_n_s32(0);
    for (int64_t k = 0; k < K8; k += 8) {
      const int16x8_t p = vld1q_s16(patch + k), wv = vmovl_s8(vld1_s8(w + o * K8 + k));
      s = vmlal_s16(s, vget_low_s16(p), vget_low_s16(wv));
      s = vmlal_s16(s, vget_high_s16(p), vget_high_s16(wv));
    }
    acc[o] = hsum(s);
  }
}

// Weights (cout, K) copied to rows of `stride` >= K values, zero padded.
Scratch<int8_t> padded_rows(const int8_t* w, int64_t cout, int64_t K, int64_t stride) {
  Scratch<int8_t> out;
  int8_t* p = out.assign(static_cast<size_t>(cout * stride), 0);
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t k = 0; k < K; ++k) p[o * stride + k] = w[o * K + k];
  return out;
}

// Runs fill(patch, n, oy, ox) then dots(patch, acc) and the output stage for every pixel.
template <typename T, typename Fill, typename Dots>
void each_pixel(const Conv8Args& a, int64_t patch_len, int threads, Fill fill, Dots dots) {
  const Conv8Geom& g = a.g;
  parallel_for(g.n * g.oh, threads, [&](int64_t r0, int64_t r1) {
    Scratch<T> patch;
    patch.assign(static_cast<size_t>(patch_len), T{0});
    Scratch<int32_t> acc;
    acc.get(static_cast<size_t>(g.cout));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        fill(patch.data(), n, oy, ox);
        dots(patch.data(), acc.data());
        write_stage_neon(a.stage, acc.data(), g.cout, 1, r * g.ow + ox, 0, g.cout, g.cout, a.y);
        apply_stage_tail(a.stage, 1, r * g.ow + ox, 0, g.cout, g.cout, a.y);
      }
    }
  });
}

// Gathers the patch of pixel (n, oy, ox): value(x_byte_ptr, c) for in-bounds taps, pad(c) else.
template <typename T, typename Value, typename Pad>
inline void gather(const Conv8Args& a, T* patch, int64_t n, int64_t oy, int64_t ox, Value value, Pad pad) {
  const Conv8Geom& g = a.g;
  const uint8_t* x = static_cast<const uint8_t*>(a.x);
  for (int i = 0; i < g.kh; ++i) {
    const int64_t iy = oy * g.sh - g.ph + i;
    for (int j = 0; j < g.kw; ++j) {
      const int64_t ix = ox * g.sw - g.pw + j;
      T* dst = patch + (int64_t{i} * g.kw + j) * g.cin;
      if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
        pad(dst);
      else
        value(dst, x + ((n * g.h + iy) * g.w + ix) * g.cin);
    }
  }
}

void conv8_baseline(const Conv8Args& a, int threads) {
  const Conv8Geom& g = a.g;
  const int64_t K = int64_t{g.kh} * g.kw * g.cin, K8 = (K + 7) / 8 * 8;
  const Scratch<int8_t> w = padded_rows(a.w, g.cout, K, K8);
  Scratch<int16_t> zp;
  zp.get(static_cast<size_t>(g.cin) + 8);
  for (int64_t c = 0; c < g.cin; ++c) zp[static_cast<size_t>(c)] = static_cast<int16_t>(a.zero_point[c]);
  const bool sgn = a.x_signed;
  auto value = [&](int16_t* dst, const uint8_t* src) {
    int64_t c = 0;
    for (; c + 8 <= g.cin; c += 8) {
      const uint8x8_t b = vld1_u8(src + c);
      const int16x8_t v = sgn ? vmovl_s8(vreinterpret_s8_u8(b)) : vreinterpretq_s16_u16(vmovl_u8(b));
      vst1q_s16(dst + c, vsubq_s16(v, vld1q_s16(zp.data() + c)));
    }
    for (; c < g.cin; ++c)
      dst[c] = static_cast<int16_t>((sgn ? int{static_cast<int8_t>(src[c])} : int{src[c]}) - zp[static_cast<size_t>(c)]);
  };
  auto pad = [&](int16_t* dst) {
    for (int64_t c = 0; c < g.cin; ++c) dst[c] = 0;
  };
  each_pixel<int16_t>(
      a, K8, threads, [&](int16_t* p, int64_t n, int64_t oy, int64_t ox) { gather(a, p, n, oy, ox, value, pad); },
      [&](const int16_t* p, int32_t* acc) { dots_baseline(p, w.data(), K8, g.cout, acc); });
}

#if defined(__aarch64__)
void conv8_sdot(const Conv8Args& a, const Scratch<int8_t>& zs, int threads) {
  const Conv8Geom& g = a.g;
  const int64_t K = int64_t{g.kh} * g.kw * g.cin, K16 = (K + 15) / 16 * 16;
  const Scratch<int8_t> w = padded_rows(a.w, g.cout, K, K16);
  Scratch<int32_t> corr;
  corr.get(static_cast<size_t>(g.cout));
  for (int64_t o = 0; o < g.cout; ++o) {
    uint32_t s = 0;  // mod 2^32
    for (int64_t k = 0; k < K; ++k)
      s += static_cast<uint32_t>(int32_t{zs[static_cast<size_t>(k % g.cin)]} * a.w[o * K + k]);
    corr[static_cast<size_t>(o)] = static_cast<int32_t>(s);
  }
  const uint8_t flip = a.x_signed ? 0 : 0x80;
  auto value = [&](int8_t* dst, const uint8_t* src) {
    int64_t c = 0;
    for (; c + 16 <= g.cin; c += 16)
      vst1q_s8(dst + c, vreinterpretq_s8_u8(veorq_u8(vld1q_u8(src + c), vdupq_n_u8(flip))));
    for (; c < g.cin; ++c) dst[c] = static_cast<int8_t>(src[c] ^ flip);
  };
  auto pad = [&](int8_t* dst) {
    for (int64_t c = 0; c < g.cin; ++c) dst[c] = zs[static_cast<size_t>(c)];
  };
  each_pixel<int8_t>(
      a, K16, threads, [&](int8_t* p, int64_t n, int64_t oy, int64_t ox) { gather(a, p, n, oy, ox, value, pad); },
      [&](const int8_t* p, int32_t* acc) {
        conv8_dots_sdot(p, w.data(), K16, g.cout, corr.data(), acc);
      });
}
#endif

}  // namespace

void conv8_neon(const Conv8Args& a, int threads) {
#if defined(__aarch64__)
  if (cpu_has_neon_dotprod()) {
    // zs = the padding byte of each channel in the signed formulation; it must fit int8.
    Scratch<int8_t> zs;
    zs.get(static_cast<size_t>(a.g.cin));
    bool fits = true;
    for (int64_t c = 0; c < a.g.cin; ++c) {
      const int32_t z = a.zero_point[c] - (a.x_signed ? 0 : 128);
      fits = fits && z >= -128 && z <= 127;
      zs[static_cast<size_t>(c)] = static_cast<int8_t>(z);
    }
    if (fits) return conv8_sdot(a, zs, threads);
  }
#endif
  conv8_baseline(a, threads);
}

}  // namespace onebit::kernels
