// AVX-512 VNNI int8 convolution (vpdpbusd). The test suite compares it with the scalar reference
// wherever the CPU has avx512.
//
// vpdpbusd multiplies unsigned bytes by signed bytes and adds groups of 4 products into int32
// lanes without saturation. Inputs are mapped to unsigned bytes u = x (uint8) or x + 128
// (int8, via xor 0x80) with zero points zu[c] = zp[c] (+128); we require 0 <= zu <= 255, else
// the caller runs the AVX2 kernel. The input is copied once into a padded u8 image whose border
// holds zu[c] (the zero point, i.e. real 0), so for every output pixel
//   y = sum_k u_k * w_k  -  corr[o],   corr[o] = sum_k zu[c(k)] * w[o][k]   (all K taps)
// equals the sum over in-bounds taps of (x - zp) * w. The int32 sums may wrap, but arithmetic
// mod 2^32 is consistent and the true y fits int32 (proven by the dispatcher), so y is exact.
// Like the AVX2 kernel, a tap row of a receptive field is kw*cin contiguous image bytes, read
// in place as quads (up to 3 bytes past the row end, against zero weights).
// Weights: [cout block of 16][tap row][quad][16][4] int8; register block 8 pixels x 16 channels.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "onebit/kernels/conv8_kernels.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {

namespace {

constexpr int kTile = 8;

template <int P>
void compute_tile(const uint8_t* const* base, int64_t row_stride, int kh, int64_t s4,
                  const int8_t* wpack, const int32_t* corr, int64_t cbn, int32_t* const* acc) {
  const int64_t k4n = kh * s4;
  for (int64_t cb = 0; cb < cbn; ++cb) {
    __m512i s[P];
    for (int p = 0; p < P; ++p) s[p] = _mm512_setzero_si512();
    const int8_t* wp = wpack + cb * k4n * 64;
    for (int i = 0; i < kh; ++i) {
      const uint8_t* rp[P];
      for (int p = 0; p < P; ++p) rp[p] = base[p] + i * row_stride;
      for (int64_t t = 0; t < s4; ++t, wp += 64) {
        const __m512i w = _mm512_loadu_si512(wp);
        for (int p = 0; p < P; ++p) {
          int32_t quad;
          std::memcpy(&quad, rp[p] + 4 * t, 4);
          s[p] = _mm512_dpbusd_epi32(s[p], _mm512_set1_epi32(quad), w);
        }
      }
    }
    const __m512i c = _mm512_loadu_si512(corr + cb * 16);
    for (int p = 0; p < P; ++p) _mm512_storeu_si512(acc[p] + cb * 16, _mm512_sub_epi32(s[p], c));
  }
}

}  // namespace

bool conv8_avx512(const Conv8Args& a, int threads) {
  const Conv8Geom& g = a.g;
  std::vector<uint8_t> zu(g.cin);
  for (int64_t c = 0; c < g.cin; ++c) {
    const int32_t z = a.zero_point[c] + (a.x_signed ? 128 : 0);
    if (z < 0 || z > 255) return false;
    zu[c] = static_cast<uint8_t>(z);
  }
  const uint8_t flip = a.x_signed ? 0x80 : 0x00;
  const int64_t hp = g.h + 2 * g.ph, wpd = g.w + 2 * g.pw;
  const int64_t row_stride = wpd * g.cin;
  std::vector<uint8_t> img(g.n * hp * row_stride + 64);
  // Border pixels hold the zero points; interior pixels are overwritten with u = x ^ flip.
  for (int64_t px = 0; px < g.n * hp * wpd; ++px) std::memcpy(img.data() + px * g.cin, zu.data(), g.cin);
  std::memset(img.data() + g.n * hp * row_stride, 0, 64);
  parallel_for(g.n * g.h, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.h, iy = r % g.h;
      const uint8_t* src = static_cast<const uint8_t*>(a.x) + (n * g.h + iy) * g.w * g.cin;
      uint8_t* dst = img.data() + (n * hp + iy + g.ph) * row_stride + g.pw * g.cin;
      for (int64_t q = 0; q < g.w * g.cin; ++q) dst[q] = src[q] ^ flip;
    }
  });
  const int64_t seg = int64_t{g.kw} * g.cin, s4 = (seg + 3) / 4, k4n = g.kh * s4;
  const int64_t cbn = (g.cout + 15) / 16;
  std::vector<int8_t> wpack(cbn * k4n * 64, 0);
  std::vector<int32_t> corr(cbn * 16, 0);
  for (int64_t o = 0; o < g.cout; ++o) {
    int8_t* ob = wpack.data() + (o / 16) * k4n * 64 + (o % 16) * 4;
    int64_t cs = 0;
    for (int i = 0; i < g.kh; ++i) {
      const int8_t* wr = a.w + (o * g.kh + i) * seg;
      int8_t* rb = ob + i * s4 * 64;
      for (int64_t q = 0; q < seg; ++q) {
        rb[(q >> 2) * 64 + (q & 3)] = wr[q];
        cs += int64_t{zu[q % g.cin]} * wr[q];
      }
    }
    corr[o] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(cs)));  // mod 2^32
  }
  std::vector<int32_t> dirneg;
  if (a.stage.kind == Conv8Out::bits) {
    dirneg.resize(g.cout);
    for (int64_t o = 0; o < g.cout; ++o) dirneg[o] = a.stage.direction[o] < 0 ? -1 : 0;
  }
  const int64_t per_px = conv8_out_per_pixel(g, a.stage.kind);
  const size_t esz = conv8_out_elem_size(a.stage.kind);
  parallel_for(g.n * g.oh, threads, [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> accs(kTile * cbn * 16);
    int32_t* ap[kTile];
    for (int p = 0; p < kTile; ++p) ap[p] = accs.data() + p * cbn * 16;
    const uint8_t* bp[kTile];
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      const uint8_t* row = img.data() + (n * hp + oy * g.sh) * row_stride;
      for (int64_t ox0 = 0; ox0 < g.ow; ox0 += kTile) {
        const int np = static_cast<int>(std::min<int64_t>(kTile, g.ow - ox0));
        for (int p = 0; p < np; ++p) bp[p] = row + (ox0 + p) * g.sw * g.cin;
        const int8_t* wpk = wpack.data();
        const int32_t* cr = corr.data();
        switch (np) {
          case 8: compute_tile<8>(bp, row_stride, g.kh, s4, wpk, cr, cbn, ap); break;
          case 7: compute_tile<7>(bp, row_stride, g.kh, s4, wpk, cr, cbn, ap); break;
          case 6: compute_tile<6>(bp, row_stride, g.kh, s4, wpk, cr, cbn, ap); break;
          case 5: compute_tile<5>(bp, row_stride, g.kh, s4, wpk, cr, cbn, ap); break;
          case 4: compute_tile<4>(bp, row_stride, g.kh, s4, wpk, cr, cbn, ap); break;
          case 3: compute_tile<3>(bp, row_stride, g.kh, s4, wpk, cr, cbn, ap); break;
          case 2: compute_tile<2>(bp, row_stride, g.kh, s4, wpk, cr, cbn, ap); break;
          default: compute_tile<1>(bp, row_stride, g.kh, s4, wpk, cr, cbn, ap); break;
        }
        for (int p = 0; p < np; ++p) {
          void* out = static_cast<char*>(a.y) + (r * g.ow + ox0 + p) * per_px * esz;
          conv8_stage_avx2(ap[p], a.stage, g.cout, dirneg.data(), out);
        }
      }
    }
  });
  return true;
}

}  // namespace onebit::kernels
