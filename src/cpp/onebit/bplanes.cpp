// Dispatchers of the bit-plane first layer (bplanes.h): validation, the window packing (the
// im2col of bits, shared by every ISA), kernel tables, threads. The window dot products are the
// ISA kernels (kernels/bplanes_kernels.h); the plane transform is one scalar kernel on every ISA
// (a table lookup per colour channel, named fall-back rows); the output stage is the §5 scalar one.
#include "onebit/bplanes.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "onebit/kernel_table.h"
#include "onebit/kernels/bplanes_kernels.h"
#include "onebit/kernels/output_stage.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {

const KernelTable<decltype(&kernels::bitplanes_scalar)> bitplanes_table(
    "bitplanes", {kernel_row(Isa::scalar, &kernels::bitplanes_scalar), fallback_row(Isa::avx2, Isa::scalar),
                  fallback_row(Isa::avx512, Isa::scalar), fallback_row(Isa::avxvnni, Isa::scalar),
                  fallback_row(Isa::neon, Isa::scalar)});

ONEBIT_AVX2_AVX512_TABLE(planes_dot, ONEBIT_NEON_ROW);

void check_bits(int bits) {
  if (bits < 1 || bits > 8) throw std::invalid_argument("weight_bits must be in [1, 8], got " + std::to_string(bits));
}

inline uint64_t low_bits(int64_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

// ORs the `nb` (<= 64) low bits of v into the bit string `dst` at bit `at`.
inline void put_bits(uint64_t* dst, int64_t at, uint64_t v, int64_t nb) {
  const int64_t wi = at >> 6, sh = at & 63;
  dst[wi] |= v << sh;
  if (sh && sh + nb > 64) dst[wi + 1] |= v >> (64 - sh);
}

// Appends one tap's Cin channel bits (W64 words, padding bits ignored) at bit `at`, and its
// in-bounds mask to `mask` when given.
inline void put_tap(uint64_t* dst, uint64_t* mask, int64_t at, const uint64_t* src, int64_t cin) {
  for (int64_t q = 0; q * 64 < cin; ++q) {
    const int64_t nb = std::min<int64_t>(64, cin - q * 64);
    put_bits(dst, at + q * 64, src[q] & low_bits(nb), nb);
    if (mask) put_bits(mask, at + q * 64, low_bits(nb), nb);
  }
}

// The `nb` bits of `src` from bit `off` ORed into `dst` at bit `at` (src readable one word past).
inline void copy_bits(uint64_t* dst, int64_t at, const uint64_t* src, int64_t off, int64_t nb) {
  for (; nb > 0; off += 64, at += 64, nb -= 64) {
    const int64_t wi = off >> 6, sh = off & 63, n = std::min<int64_t>(64, nb);
    const uint64_t v = sh ? (src[wi] >> sh) | (src[wi + 1] << (64 - sh)) : src[wi];
    put_bits(dst, at, v & low_bits(n), n);
  }
}

// One image's input rows as bit strings: row iy holds pixel ix's Cin bits at bit (ix + pad)*Cin
// (the padding columns 0), `rw` words per row with a zero word past the end; then the in-bounds
// mask row (the same bits set for every row). Padding rows are never read.
struct RowBits {
  int64_t rw = 0;
  std::vector<uint64_t> words;  // H + 1 rows
  const uint64_t* row(int64_t iy) const { return words.data() + iy * rw; }
};

void row_bits(const uint64_t* x, const BConvShape& s, RowBits& r) {
  const int64_t wp = s.w + s.pad + s.pad_end, w64 = s.words();
  r.rw = (wp * s.cin + 63) / 64 + 1;
  r.words.assign(static_cast<size_t>((s.h + 1) * r.rw), 0);
  uint64_t* mask = r.words.data() + s.h * r.rw;
  for (int64_t ix = 0; ix < s.w; ++ix)
    for (int64_t q = 0; q * 64 < s.cin; ++q) {
      const int64_t nb = std::min<int64_t>(64, s.cin - q * 64);
      put_bits(mask, (ix + s.pad) * s.cin + q * 64, low_bits(nb), nb);
    }
  for (int64_t iy = 0; iy < s.h; ++iy)
    for (int64_t ix = 0; ix < s.w; ++ix)
      put_tap(r.words.data() + iy * r.rw, nullptr, (ix + s.pad) * s.cin, x + (iy * s.w + ix) * w64, s.cin);
}

// Windows of output pixels [p0, p1) of one image (its rows `r`): rows of ww words in xw and mw,
// in-bounds bits in nv (bplanes_kernels.h). `full` is the mask of a window with every tap in
// bounds (the first K bits). Kernel row i of a window is the KW*Cin bits of input row
// oy*stride - pad + i from bit ox*stride*Cin.
void pack_windows(const RowBits& r, const BConvShape& s, int64_t ww, const uint64_t* full, int64_t p0, int64_t p1,
                  uint64_t* xw, uint64_t* mw, int32_t* nv) {
  const int64_t ow = s.out_w(), seg = s.kw * s.cin;
  const uint64_t* mrow = r.row(s.h);
  std::memset(xw, 0, static_cast<size_t>((p1 - p0) * ww) * 8);
  int64_t oy = p0 / ow, ox = p0 % ow;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t y0 = oy * s.stride - s.pad, x0 = ox * s.stride - s.pad, off = ox * s.stride * s.cin;
    uint64_t* xr = xw + (p - p0) * ww;
    uint64_t* mr = mw + (p - p0) * ww;
    const int64_t rows = std::min(s.h, y0 + s.kh) - std::max<int64_t>(0, y0);
    const int64_t cols = std::min(s.w, x0 + s.kw) - std::max<int64_t>(0, x0);
    nv[p - p0] = static_cast<int32_t>(rows * cols * s.cin);
    const bool interior = rows == s.kh && cols == s.kw;
    for (int64_t i = 0; i < ww; ++i) mr[i] = interior ? full[i] : 0;
    for (int64_t i = 0; i < s.kh; ++i) {
      const int64_t iy = y0 + i;
      if (iy < 0 || iy >= s.h) continue;  // a padding row: x and mask bits 0
      copy_bits(xr, i * seg, r.row(iy), off, seg);
      if (!interior) copy_bits(mr, i * seg, mrow, off, seg);
    }
    if (++ox == ow) {
      ox = 0;
      ++oy;
    }
  }
}

}  // namespace

void bitplanes(const uint8_t* u, int64_t pixels, int64_t channels, const int32_t* planes, int64_t nplanes,
               uint64_t* out, Isa isa, int threads) {
  if (channels < 1 || nplanes < 1 || pixels < 0)
    throw std::invalid_argument("bitplanes needs at least one channel and one plane");
  for (int64_t i = 0; i < nplanes; ++i)
    if (planes[i] < 0 || planes[i] >= 8 * channels)
      throw std::invalid_argument("plane id " + std::to_string(planes[i]) + " outside [0, " +
                                  std::to_string(8 * channels - 1) + "] for a " + std::to_string(channels) +
                                  "-channel image");
  const auto kernel = bitplanes_table.get(isa);
  const int64_t per = std::max<int64_t>(1024, 4096 / channels);
  parallel_for((pixels + per - 1) / per, threads, [&](int64_t t0, int64_t t1) {
    kernel(u, t0 * per, std::min(pixels, t1 * per), channels, planes, nplanes, out);
  });
}

std::shared_ptr<const PlanesWeights> prepare_planes_weights(const uint64_t* w, bool window, int weight_bits,
                                                            int64_t cout, int64_t kh, int64_t kw, int64_t cin) {
  check_bits(weight_bits);
  if (cout < 1 || kh < 1 || kw < 1 || cin < 1)
    throw std::invalid_argument("bconv2d_planes weights need Cout, KH, KW, Cin >= 1");
  auto p = std::make_shared<PlanesWeights>();
  p->bits = weight_bits;
  p->cout = cout; p->kh = kh; p->kw = kw; p->cin = cin;
  const int64_t kbits = kh * kw * cin, w64 = (cin + 63) / 64;
  p->ww = (kbits + 63) / 64;
  p->blocks = (cout + 7) / 8;
  const size_t n = static_cast<size_t>(p->blocks * weight_bits * p->ww * 8);
  uint64_t* buf = static_cast<uint64_t*>(std::aligned_alloc(64, (n * 8 + 63) / 64 * 64));
  if (!buf) throw std::bad_alloc();
  p->words = std::shared_ptr<uint64_t>(buf, std::free);
  std::memset(buf, 0, n * 8);
  std::vector<uint64_t> row(static_cast<size_t>(p->ww));
  for (int j = 0; j < weight_bits; ++j)
    for (int64_t o = 0; o < cout; ++o) {
      if (window) {
        std::memcpy(row.data(), w + (j * cout + o) * p->ww, row.size() * 8);
        if (row.back() & ~low_bits(kbits - (p->ww - 1) * 64))
          throw std::invalid_argument("bconv2d_planes: window weights have non-zero padding bits (bits " +
                                      std::to_string(kbits) + ".. of a row)");
      } else {
        std::fill(row.begin(), row.end(), 0);
        for (int64_t t = 0; t < kh * kw; ++t) {
          const uint64_t* src = w + ((j * cout + o) * kh * kw + t) * w64;
          if (cin % 64 && (src[w64 - 1] >> (cin % 64)))
            throw std::invalid_argument("bconv2d_planes: packed weights have non-zero channel padding bits (channels " +
                                        std::to_string(cin) + "..)");
          put_tap(row.data(), nullptr, t * cin, src, cin);
        }
      }
      for (int64_t i = 0; i < p->ww; ++i)
        buf[((o / 8 * weight_bits + j) * p->ww + i) * 8 + o % 8] = row[static_cast<size_t>(i)];
    }
  return p;
}

void bconv2d_planes(const BConvArgs& a, const PlanesWeights& w, Isa isa, int threads) {
  const BConvShape& s = a.s;
  check_bits(w.bits);
  if (s.cin != w.cin || s.cout != w.cout || s.kh != w.kh || s.kw != w.kw)
    throw std::invalid_argument("bconv2d_planes: the weights do not match the layer's shape");
  if (a.weight_mask) throw std::invalid_argument("bconv2d_planes takes no weight mask");
  if (s.pad_value != 0) throw std::invalid_argument("bconv2d_planes pads with true zeros only");
  if (s.n < 0 || s.h < 1 || s.w < 1 || s.stride < 1 || s.pad < 0 || s.pad_end != s.pad || s.out_h() < 1 ||
      s.out_w() < 1)
    throw std::invalid_argument("bconv2d_planes: bad geometry");
  // |y| <= (2^M - 1) * K must fit the int32 accumulator
  if (s.k_bits() > ((int64_t{1} << 31) - 1) / ((int64_t{1} << w.bits) - 1))
    throw std::invalid_argument("bconv2d_planes: (2^M - 1) * KH*KW*Cin exceeds the int32 accumulator");
  check_output_stage(a.stage, s.cout);
  const auto dot = planes_dot_table.get(isa);
  const int64_t npix = s.out_h() * s.out_w(), ld = w.blocks * 8;
  const int64_t in_words = s.h * s.w * s.words();
  constexpr int64_t kChunk = 32;  // output pixels per window batch
  std::vector<uint64_t> full(static_cast<size_t>(w.ww), 0);
  for (int64_t b = 0; b < s.k_bits(); b += 64) put_bits(full.data(), b, low_bits(s.k_bits() - b), std::min<int64_t>(64, s.k_bits() - b));
  for (int64_t n = 0; n < s.n; ++n) {
    RowBits rows;
    row_bits(a.x + n * in_words, s, rows);
    parallel_for((npix + kChunk - 1) / kChunk, threads, [&](int64_t t0, int64_t t1) {
      static thread_local std::vector<uint64_t> xw, mw;
      static thread_local std::vector<int32_t> nv, y;
      xw.resize(static_cast<size_t>(kChunk * w.ww));
      mw.resize(xw.size());
      nv.resize(kChunk);
      y.resize(static_cast<size_t>(kChunk * ld));
      for (int64_t c = t0; c < t1; ++c) {
        const int64_t p0 = c * kChunk, p1 = std::min(npix, p0 + kChunk);
        pack_windows(rows, s, w.ww, full.data(), p0, p1, xw.data(), mw.data(), nv.data());
        dot(xw.data(), mw.data(), nv.data(), p1 - p0, w.ww, w.words.get(), w.blocks, w.bits, y.data());
        kernels::write_stage_scalar(a.stage, y.data(), ld, p1 - p0, n * npix + p0, 0, s.cout, s.cout, a.out);
      }
    });
  }
}

}  // namespace onebit
