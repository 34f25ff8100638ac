// AVX-512 VNNI int8 convolution (vpdpbusd). UNTESTED on the development machine (no AVX-512
// there); the test suite runs it against the scalar reference wherever the CPU has avx512.
//
// vpdpbusd multiplies unsigned bytes by signed bytes and adds groups of 4 products into int32
// lanes without saturation. Inputs are mapped to unsigned bytes u = x (uint8) or x + 128
// (int8, via xor 0x80) with zero points zu[c] = zp[c] (+128); we require 0 <= zu <= 255, else
// the AVX2 kernel runs instead. Padded taps are filled with zu[c], so
//   y = sum_k u_k * w_k  -  corr[o],   corr[o] = sum_k zu[c(k)] * w[o][k]   (all K taps)
// equals sum over in-bounds taps of (x - zp) * w. The int32 sums may wrap, but arithmetic
// mod 2^32 is consistent and the true y fits int32 (proven by the dispatcher), so y is exact.
// Weights: [cout block of 16][k quad][16][4] int8; register block 8 pixels x 16 channels.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "onebit/kernels/conv8_kernels.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {

namespace {

constexpr int kTile = 8;

template <int P>
void compute_tile(const uint8_t* const* patch, const int8_t* wpack, const int32_t* corr,
                  int64_t k4n, int64_t cbn, int32_t* const* acc) {
  for (int64_t cb = 0; cb < cbn; ++cb) {
    __m512i s[P];
    for (int p = 0; p < P; ++p) s[p] = _mm512_setzero_si512();
    const int8_t* wp = wpack + cb * k4n * 64;
    for (int64_t k4 = 0; k4 < k4n; ++k4, wp += 64) {
      const __m512i w = _mm512_loadu_si512(wp);
      for (int p = 0; p < P; ++p) {
        int32_t quad;
        std::memcpy(&quad, patch[p] + 4 * k4, 4);
        s[p] = _mm512_dpbusd_epi32(s[p], _mm512_set1_epi32(quad), w);
      }
    }
    const __m512i c = _mm512_loadu_si512(corr + cb * 16);
    for (int p = 0; p < P; ++p) _mm512_storeu_si512(acc[p] + cb * 16, _mm512_sub_epi32(s[p], c));
  }
}

void build_patch_u8(const Conv8Args& a, const uint8_t* zu, int64_t n, int64_t oy, int64_t ox,
                    uint8_t* dst, int64_t kq) {
  const Conv8Geom& g = a.g;
  const uint8_t flip = a.x_signed ? 0x80 : 0x00;
  for (int i = 0; i < g.kh; ++i) {
    const int64_t iy = oy * g.sh - g.ph + i;
    for (int j = 0; j < g.kw; ++j) {
      const int64_t ix = ox * g.sw - g.pw + j;
      uint8_t* d = dst + (int64_t{i} * g.kw + j) * g.cin;
      if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) {
        std::memcpy(d, zu, g.cin);  // zero point = real zero
        continue;
      }
      const uint8_t* s = static_cast<const uint8_t*>(a.x) + ((n * g.h + iy) * g.w + ix) * g.cin;
      for (int64_t c = 0; c < g.cin; ++c) d[c] = s[c] ^ flip;
    }
  }
  const int64_t k = int64_t{g.kh} * g.kw * g.cin;
  for (int64_t q = k; q < kq; ++q) dst[q] = 0;
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
  const int64_t k = int64_t{g.kh} * g.kw * g.cin;
  const int64_t k4n = (k + 3) / 4, kq = 4 * k4n;
  const int64_t cbn = (g.cout + 15) / 16;
  std::vector<int8_t> wpack(cbn * k4n * 64, 0);
  std::vector<int32_t> corr(cbn * 16, 0);
  for (int64_t o = 0; o < g.cout; ++o) {
    const int8_t* wr = a.w + o * k;
    int8_t* base = wpack.data() + (o / 16) * k4n * 64 + (o % 16) * 4;
    int64_t cs = 0;
    for (int64_t q = 0; q < k; ++q) {
      base[(q / 4) * 64 + (q % 4)] = wr[q];
      cs += int64_t{zu[q % g.cin]} * wr[q];
    }
    corr[o] = static_cast<int32_t>(static_cast<uint32_t>(cs));  // mod 2^32, see above
  }
  std::vector<int32_t> dirneg;
  if (a.stage.kind == Conv8Out::bits) {
    dirneg.resize(g.cout);
    for (int64_t o = 0; o < g.cout; ++o) dirneg[o] = a.stage.direction[o] < 0 ? -1 : 0;
  }
  const int64_t per_px = conv8_out_per_pixel(g, a.stage.kind);
  const size_t esz = conv8_out_elem_size(a.stage.kind);
  parallel_for(g.n * g.oh, threads, [&](int64_t r0, int64_t r1) {
    std::vector<uint8_t> patches(kTile * kq);
    std::vector<int32_t> accs(kTile * cbn * 16);
    const uint8_t* pp[kTile];
    int32_t* ap[kTile];
    for (int p = 0; p < kTile; ++p) {
      pp[p] = patches.data() + p * kq;
      ap[p] = accs.data() + p * cbn * 16;
    }
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.oh, oy = r % g.oh;
      for (int64_t ox0 = 0; ox0 < g.ow; ox0 += kTile) {
        const int np = static_cast<int>(std::min<int64_t>(kTile, g.ow - ox0));
        for (int p = 0; p < np; ++p)
          build_patch_u8(a, zu.data(), n, oy, ox0 + p, patches.data() + p * kq, kq);
        switch (np) {
          case 8: compute_tile<8>(pp, wpack.data(), corr.data(), k4n, cbn, ap); break;
          case 7: compute_tile<7>(pp, wpack.data(), corr.data(), k4n, cbn, ap); break;
          case 6: compute_tile<6>(pp, wpack.data(), corr.data(), k4n, cbn, ap); break;
          case 5: compute_tile<5>(pp, wpack.data(), corr.data(), k4n, cbn, ap); break;
          case 4: compute_tile<4>(pp, wpack.data(), corr.data(), k4n, cbn, ap); break;
          case 3: compute_tile<3>(pp, wpack.data(), corr.data(), k4n, cbn, ap); break;
          case 2: compute_tile<2>(pp, wpack.data(), corr.data(), k4n, cbn, ap); break;
          default: compute_tile<1>(pp, wpack.data(), corr.data(), k4n, cbn, ap); break;
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
