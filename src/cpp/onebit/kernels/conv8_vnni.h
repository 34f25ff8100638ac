// The VNNI int8 convolution (vpdpbusd), one template for both register widths: included by
// conv8_avx512.cpp (zmm, 16 int32 lanes) and conv8_avxvnni.cpp (ymm, 8 lanes), each compiled
// with its own flags; everything here has internal linkage.
//
// vpdpbusd multiplies unsigned bytes by signed bytes and adds groups of 4 products into int32
// lanes without saturation. Inputs become unsigned bytes u = x (uint8) or x ^ 0x80 = x + 128
// (int8), zero points zu[c] = zp[c] (+128), 0 <= zu <= 255 (conv8_prepare picks the avx2 kernel
// otherwise). The padded image's border holds zu[c] (real 0), so for every output pixel
//   y = sum over all K taps of u_k * w_k  -  corr[o],   corr[o] = sum_k zu[c(k)] * w[o][k]
// equals the sum over in-bounds taps of (x - zp) * w. The int32 sums may wrap, but arithmetic
// mod 2^32 is consistent and the true y fits int32 (proven by conv8_prepare), so y is exact.
// A tap row of a receptive field is kw*cin contiguous image bytes, read in place as quads (up to
// 3 bytes past the row end, against zero weights). Without padding, with uint8 input and
// kw*cin a multiple of 4 the input itself is the image (no copy).
//
// Register block: P <= pmax(NB) pixels x NB <= NBMAX vectors of L output channels (one broadcast
// quad per pixel, NB weight loads per quad step; fewer channel vectors allow more pixels, which
// matters for small K such as a 3x3 stem on 3 channels). A row's accumulators go to a per-task
// int32 row buffer; the shared AVX2 output stage (output_avx2.h) then writes the whole row.
#pragma once
#include <immintrin.h>

#include <array>
#include <cstdlib>
#include <utility>
#include <vector>
#include <cstring>
#include <new>

#include "onebit/kernels/conv8_kernels.h"
#include "onebit/kernels/output_avx2.h"
#include "onebit/threadpool.h"

namespace onebit::kernels {
namespace {

struct VnniCtx {
  int64_t ps = 0;          // image bytes between horizontally adjacent output pixels (sw*cin)
  int64_t row_stride = 0;  // image bytes per image row
  int kh = 0;
  int64_t s4 = 0;          // quads per tap row
  int64_t wblock = 0;      // weight bytes per block of L channels (kh * s4 * 4 * L)
  // Fused int8 stage (tiles with F = true): per channel y clamped to [lo, hi] (the saturation
  // window, or the int32 range when no intermediate can leave int32), then
  // q = clamp((y*M + b) >> S, -127, 127) in int32 lanes, b = B + 2^(S-1) mod 2^32; written to
  // the int8 output row (cout values per pixel) directly, no int32 row buffer.
  const int32_t *lo = nullptr, *hi = nullptr, *m = nullptr, *b = nullptr;
  const int32_t* corr = nullptr;  // the zero-point correction per channel (padded)
  int shift = 0;
  int64_t cout = 0;
};

// P pixels (receptive fields from px[p], their top-left taps in the padded image; consecutive
// output pixels, possibly of several rows) x NB channel vectors of channels [c0, c0 + NB * L):
// y (corrected) to
// out[p * ld + b * L + lane] (int32), or with F the fused int8 stage to out[p * c.cout + c0 + ...]
// (int8; lanes past cout not written).
template <class V, int P, int NB, bool F>
__attribute__((noinline)) void vnni_tile(const VnniCtx& c, const uint8_t* const* px, const int8_t* wp,
                                         int64_t c0, void* out, int64_t ld) {
  typename V::reg s[P][NB];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) s[p][b] = V::zero();
  for (int i = 0; i < c.kh; ++i) {
    const uint8_t* rp[P];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) rp[p] = px[p] + i * c.row_stride;
    const int8_t* wi = wp + i * c.s4 * 4 * V::L;
#pragma GCC unroll 1
    for (int64_t t = 0; t < c.s4; ++t) {
      typename V::reg w[NB];
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) w[b] = V::load(wi + b * c.wblock + t * 4 * V::L);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
        const typename V::reg u = V::bcast(rp[p] + 4 * t);
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) s[p][b] = V::dp(s[p][b], u, w[b]);
      }
    }
  }
  if constexpr (F) {
    // pixel by pixel: the per-channel vectors are reloaded (L1) rather than held beside the
    // accumulators, which leaves AVX-VNNI's 16 registers enough
    // (the context's fields are read once into locals: the int8 stores may alias anything, so
    // the compiler would reload every pointer from `c` after each store)
    const __m128i sh = _mm_cvtsi32_si128(c.shift);
    const int32_t *const corr = c.corr + c0, *const lo = c.lo + c0, *const hi = c.hi + c0,
                  *const m = c.m + c0, *const bias = c.b + c0;
    const int64_t cout = c.cout, valid = c.cout - c0;
    int8_t* const o = static_cast<int8_t*>(out) + c0;
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) {
        const int64_t k = b * V::L;
        V::store_q8(o + p * cout + k,
                    V::requant(V::sub(s[p][b], V::load32(corr + k)), V::load32(lo + k),
                               V::load32(hi + k), V::load32(m + k), V::load32(bias + k), sh),
                    valid - k);
      }
  } else {
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) {
      const typename V::reg cv = V::load32(c.corr + c0 + b * V::L);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p)
        V::store_sub(static_cast<int32_t*>(out) + p * ld + b * V::L, s[p][b], cv);
    }
  }
}

template <class V>
using VnniFn = void (*)(const VnniCtx&, const uint8_t* const*, const int8_t*, int64_t, void*, int64_t);

// Tile functions for NB vectors and P = 1 .. V::pmax(NB) pixels: table[P - 1].
template <class V, int NB, bool F, int... I>
constexpr std::array<VnniFn<V>, sizeof...(I)> vnni_table(std::integer_sequence<int, I...>) {
  return {vnni_tile<V, I + 1, NB, F>...};
}

template <class V, bool F>
struct VnniTables {
  static constexpr auto t1 = vnni_table<V, 1, F>(std::make_integer_sequence<int, V::pmax(1)>{});
  static constexpr auto t2 = vnni_table<V, 2, F>(std::make_integer_sequence<int, V::pmax(2)>{});
  static constexpr auto t3 = vnni_table<V, 3, F>(std::make_integer_sequence<int, V::pmax(3)>{});
  static constexpr auto t4 = vnni_table<V, 4, F>(std::make_integer_sequence<int, V::pmax(4)>{});
  static VnniFn<V> get(int nb, int p) {
    if constexpr (V::NBMAX >= 4) {
      if (nb == 4) return t4[p - 1];
      if (nb == 3) return t3[p - 1];
    }
    return nb == 2 ? t2[p - 1] : t1[p - 1];
  }
};

// Splits a row of ow pixels into ceil(ow / pmax) tiles of sizes as equal as possible (so no
// tile is much shorter than the others); at most `cap` tiles, else 0 (then fixed pmax steps).
inline int balanced_tiles(int64_t ow, int pmax, int* tiles, int cap) {
  const int64_t nt = (ow + pmax - 1) / pmax;
  if (nt > cap) return 0;
  const int64_t q = ow / nt, r = ow % nt;
  for (int64_t k = 0; k < nt; ++k) tiles[k] = static_cast<int>(q + (k < r ? 1 : 0));
  return static_cast<int>(nt);
}

// max |y| over a row buffer (npix rows of ld, the first n values each); |INT32_MIN| = 2^31.
inline uint32_t row_absmax(const int32_t* rb, int64_t ld, int64_t npix, int64_t n) {
  __m256i m = _mm256_setzero_si256();
  uint32_t tail = 0;
  for (int64_t p = 0; p < npix; ++p) {
    const int32_t* y = rb + p * ld;
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
      m = _mm256_max_epu32(
          m, _mm256_abs_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c))));
    for (; c < n; ++c) tail = std::max(tail, static_cast<uint32_t>(std::abs(int64_t{y[c]})));
  }
  alignas(32) uint32_t v[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), m);
  for (uint32_t x : v) tail = std::max(tail, x);
  return tail;
}

template <class V>
void conv8_vnni(const Conv8Args& a, const Conv8Prepared& pw, int threads) {
  constexpr int64_t L = V::L;
  const Conv8Geom& g = a.g;
  const int64_t seg = int64_t{g.kw} * g.cin;
  const bool direct = !a.x_signed && g.ph == 0 && g.pw == 0 && g.ph_end == 0 && g.pw_end == 0 && seg % 4 == 0;
  const int64_t hp = g.h + g.ph + g.ph_end, wpd = g.w + g.pw + g.pw_end;
  const int64_t row_stride = wpd * g.cin;
  const uint8_t* img = static_cast<const uint8_t*>(a.x);
  if (!direct) {
    static thread_local Scratch<uint8_t> img_buf;  // grow-only, kept by the thread
    const size_t len = static_cast<size_t>(g.n * hp * row_stride);
    uint8_t* const im = img_buf.get(len + 64);
    std::memset(im + len, 0, 64);  // the quads of the last tap row may read 3 bytes past it
    const uint8_t flip = a.x_signed ? 0x80 : 0x00;
    const uint8_t* zu = pw.zu.data();
    const int64_t rowlen = g.w * g.cin, lpad = int64_t{g.pw} * g.cin;
    // Rows of about 16 KiB or more per task: a small image is one task (no fork/join).
    const int64_t rows = g.n * hp;
    const int64_t per = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_stride));
    parallel_for((rows + per - 1) / per, threads_for(static_cast<int64_t>(len), 32768, threads),
                 [&](int64_t t0, int64_t t1) {
      for (int64_t r = t0 * per; r < std::min(rows, t1 * per); ++r) {
        uint8_t* d = im + r * row_stride;
        const int64_t n = r / hp, iy = r % hp - g.ph;
        if (iy < 0 || iy >= g.h) {
          for (int64_t px = 0; px < wpd; ++px) std::memcpy(d + px * g.cin, zu, g.cin);
          continue;
        }
        for (int64_t px = 0; px < g.pw; ++px) std::memcpy(d + px * g.cin, zu, g.cin);
        for (int64_t px = 0; px < g.pw_end; ++px) std::memcpy(d + lpad + rowlen + px * g.cin, zu, g.cin);
        const uint8_t* src = static_cast<const uint8_t*>(a.x) + (n * g.h + iy) * rowlen;
        d += lpad;
        int64_t q = 0;
        const __m256i fv = _mm256_set1_epi8(static_cast<char>(flip));
        for (; q + 32 <= rowlen; q += 32)
          _mm256_storeu_si256(
              reinterpret_cast<__m256i*>(d + q),
              _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + q)), fv));
        for (; q < rowlen; ++q) d[q] = src[q] ^ flip;
      }
    });
    img = im;
  }
  VnniCtx c;
  c.ps = int64_t{g.sw} * g.cin;
  c.row_stride = row_stride;
  c.kh = g.kh;
  c.s4 = (seg + 3) / 4;
  c.wblock = g.kh * c.s4 * 4 * L;
  const int64_t cbn = (g.cout + L - 1) / L;
  const int64_t ld = cbn * L;  // >= round_up(cout, 8): what write_stage_avx2 reads
  const StagePrep sp = prepare_stage(a.stage, g.cout, pw.ybound);
  // int8 stage: the proven bound |y| <= ybound is far above the accumulators of real data, and
  // with large multipliers it rules out the int32 path. A row whose accumulators all satisfy
  // |y| <= yfast, yfast = (2^31 - 1 - max|B| - 2^(S-1)) / max|M|, takes it (sp_fast): then
  // y*M + B + 2^(S-1) cannot leave int32 and the int32 formula equals the int64 one exactly.
  // (With a saturation window, sp.int8_win, every row takes the int32 path on clamped y.)
  // AVX-512's exact int64 stage costs about as much as the int32 one: no per-row test there.
  const bool int32_ok = sp.int8_fast || sp.int8_win;  // the int32 stage is exact on every row
  const bool fused = a.stage.kind == OutputKind::int8 && int32_ok;
  int64_t yfast = -1;
  if (a.stage.kind == OutputKind::int8 && !int32_ok && !V::Int8Stage::kFast) {
    int64_t mmax = 0, bmax = 0;
    for (int64_t o = 0; o < g.cout; ++o) {
      mmax = std::max<int64_t>(mmax, std::abs(int64_t{a.stage.multiplier[o]}));
      bmax = std::max<int64_t>(bmax, std::abs(int64_t{a.stage.bias[o]}));
    }
    const int64_t room = int64_t{INT32_MAX} - bmax - (int64_t{1} << (a.stage.shift - 1));
    if (room >= 0 && mmax > 0) yfast = std::min<int64_t>(room / mmax, INT32_MAX - 1);
  }
  const StagePrep sp_fast = yfast >= 0 ? prepare_stage(a.stage, g.cout, yfast) : StagePrep{};
  // Rows that need the exact wide int8 path: V::Int8Stage (int64 lanes where the ISA has them,
  // AVX-512), else write_stage_avx2's float64 / scalar path.
  const bool wide_int8 = a.stage.kind == OutputKind::int8 && !int32_ok;
  Scratch<int32_t> no_lo, no_hi;  // int8_fast: no clamp
  if (fused) {
    c.cout = g.cout;
    c.shift = a.stage.shift;
    c.m = sp.m.data();
    c.b = sp.b.data();
    if (sp.int8_win) {
      c.lo = sp.lo.data();
      c.hi = sp.hi.data();
    } else {
      no_lo.assign(static_cast<size_t>(round_up(g.cout, 64)), INT32_MIN);
      no_hi.assign(static_cast<size_t>(round_up(g.cout, 64)), INT32_MAX);
      c.lo = no_lo.data();
      c.hi = no_hi.data();
    }
  }
  c.corr = pw.corr.data();
  const typename V::Int8Stage wide(wide_int8 ? &a.stage : nullptr, g.cout);
  // Work items are chunks of `fold` consecutive output rows, their pixels tiled as one run (a
  // tile's pixels may lie on different rows: each has its own receptive-field pointer), so that
  // short rows (7 or 14 pixels) still fill the tiles: P accumulator chains per weight vector hide
  // vpdpbusd's latency only when P is near pmax. fold: the smallest divisor of the row count
  // giving >= 24 pixels (4 tiles), at most 128, leaving a chunk for each thread. A thread gets
  // at least ~0.5M multiply-adds (a few microseconds), so the small convs of a network's tail run
  // without a fork/join.
  const int th = threads_for(g.n * g.oh * g.ow * g.cout * g.kh * seg, int64_t{1} << 19, threads);
  int64_t fold = 1;
  for (int64_t f = 1; f <= g.n * g.oh / th && g.ow * f <= 128; ++f) {
    if ((g.n * g.oh) % f) continue;
    fold = f;
    if (g.ow * f >= 24) break;
  }
  const int64_t ow = g.ow * fold;  // pixels per chunk
  // Channel groups of NBMAX blocks (the last one may have fewer), each with its row tiles.
  const int64_t ngroups = (cbn + V::NBMAX - 1) / V::NBMAX;
  const int nbfull = static_cast<int>(std::min<int64_t>(V::NBMAX, cbn));
  const int nbtail = static_cast<int>(cbn - (ngroups - 1) * V::NBMAX);
  int tiles_full[128], tiles_tail[128];
  const int nt_full = balanced_tiles(ow, V::pmax(nbfull), tiles_full, 128);
  const int nt_tail = balanced_tiles(ow, V::pmax(nbtail), tiles_tail, 128);
  const int64_t rows = g.n * g.oh / fold;  // chunks
  // The receptive fields of chunk r's pixels (their top-left taps in the padded image).
  auto chunk_fields = [&](int64_t r, const uint8_t** px) {
    for (int64_t j = 0; j < fold; ++j) {
      const int64_t rr = r * fold + j, n = rr / g.oh, oy = rr % g.oh;
      const uint8_t* const row = img + (n * hp + oy * g.sh) * row_stride;
      for (int64_t ox = 0; ox < g.ow; ++ox) px[j * g.ow + ox] = row + ox * c.ps;
    }
  };
  // Chunk r's tiles of channel group gi: fused, into the int8 output; else into the row buffer.
  // Returns the group's channel end.
  auto group_tiles = [&](int64_t r, int64_t gi, const uint8_t* const* px, int32_t* rb) {
    const int64_t b0 = gi * V::NBMAX;
    const int nb = static_cast<int>(std::min<int64_t>(V::NBMAX, cbn - b0));
    const int8_t* wg = pw.w8.data() + b0 * c.wblock;
    const int* tiles = nb == nbfull ? tiles_full : tiles_tail;
    const int nt = nb == nbfull ? nt_full : nt_tail;
    const int pmax = V::pmax(nb);
    int64_t ox = 0;
    for (int k = 0; nt ? k < nt : ox < ow; ++k) {
      const int np = nt ? tiles[k] : static_cast<int>(std::min<int64_t>(pmax, ow - ox));
      if (fused)
        VnniTables<V, true>::get(nb, np)(c, &px[ox], wg, b0 * L,
                                         static_cast<int8_t*>(a.y) + (r * ow + ox) * g.cout, 0);
      else
        VnniTables<V, false>::get(nb, np)(c, &px[ox], wg, b0 * L, rb + ox * ld + b0 * L, ld);
      ox += np;
    }
    return std::min<int64_t>(g.cout, (b0 + nb) * L);
  };
  // With the fused stage every tile writes its own outputs, so a chunk's channel groups are
  // independent work items (a tail, applied per group, needs groups of whole 64-channel words):
  // short layers with many channels (a 7x7 map, 512 channels: 7 chunks) then split evenly.
  const bool split = fused && ngroups > 1 && th > 1 && (!a.stage.tail || (V::NBMAX * L) % 64 == 0);
  if (split) {
    parallel_for(rows * ngroups, th, [&](int64_t k0, int64_t k1) {
      std::vector<const uint8_t*> px(static_cast<size_t>(ow));
      int64_t rcur = -1;
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t r = k / ngroups, gi = k % ngroups;
        if (r != rcur) chunk_fields(r, px.data());
        rcur = r;
        const int64_t c1 = group_tiles(r, gi, px.data(), nullptr);
        apply_stage_tail(a.stage, ow, r * ow, gi * V::NBMAX * L, c1, g.cout, a.y);
      }
    });
    return;
  }
  parallel_for(rows, th, [&](int64_t r0, int64_t r1) {
    Scratch<int32_t> rowbuf;
    if (!fused) rowbuf.assign(static_cast<size_t>(ow * ld), 0);
    int32_t* rb = fused ? nullptr : &rowbuf[0];
    int8_t* const y8 = static_cast<int8_t*>(a.y);
    std::vector<const uint8_t*> px(static_cast<size_t>(ow));
    for (int64_t r = r0; r < r1; ++r) {
      chunk_fields(r, px.data());
      for (int64_t gi = 0; gi < ngroups; ++gi) group_tiles(r, gi, px.data(), rb);
      if (!fused) {
        const bool fast =
            yfast >= 0 && row_absmax(rb, ld, ow, g.cout) <= static_cast<uint32_t>(yfast);
        if (!(wide_int8 && !fast && wide.run(rb, ld, ow, r * ow, y8)))
          write_stage_avx2(a.stage, fast ? sp_fast : sp, rb, ld, ow, r * ow, 0, g.cout,
                           g.cout, a.y);
      }
      apply_stage_tail(a.stage, ow, r * ow, 0, g.cout, g.cout, a.y);
    }
  });
}

}  // namespace
}  // namespace onebit::kernels
