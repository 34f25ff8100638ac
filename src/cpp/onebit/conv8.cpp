// int8 convolution dispatcher: validation, the int32 accumulator proof, weight preparation
// (plain C++: it runs once per layer), the kernel from the op's table (onebit/kernel_table.h).
#include "onebit/conv8.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "onebit/kernel_table.h"
#include "onebit/kernels/conv8_kernels.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("int8 conv: " + msg); }

// Kernels over prepared weights (the layout Conv8Prepared::kernel names).
using Kernel = void (*)(const Conv8Args&, const Conv8Prepared&, int);
using MacLoop = int64_t (*)(int64_t);

// Scalar and NEON read the OHWI weights as given, with the prepared zero points.
void scalar_prepared(const Conv8Args& a, const Conv8Prepared& p, int threads) {
  Conv8Args b = a;
  b.w = p.w8.data();
  b.zero_point = p.zero_point.data();
  kernels::conv8_scalar(b, threads);
}
#if defined(ONEBIT_HAVE_NEON)
void neon_prepared(const Conv8Args& a, const Conv8Prepared& p, int threads) {
  Conv8Args b = a;
  b.w = p.w8.data();
  b.zero_point = p.zero_point.data();
  kernels::conv8_neon(b, threads);
}
#endif

// The int8 convolution, one row per ISA. The VNNI rows (avxvnni, avx512) need every zu =
// zp (+128 for int8 input) in [0, 255]; layers whose zero points do not fit run the avx2 row
// (pick_kernel, per layer). The NEON row picks SDOT or its baseline by CPU and zero points.
const KernelTable<Kernel> conv8_table("conv8", {
    kernel_row(Isa::scalar, &scalar_prepared),
#if defined(ONEBIT_HAVE_X86)
    kernel_row(Isa::avx2, &kernels::conv8_avx2),
    kernel_row(Isa::avxvnni, &kernels::conv8_avxvnni),
    kernel_row(Isa::avx512, &kernels::conv8_avx512),
#endif
    ONEBIT_NEON_ROW(&neon_prepared)
});

// int8_mac_peak's timed loop.
const KernelTable<MacLoop> int8_mac_loop_table("int8_mac_loop", {
    kernel_row(Isa::scalar, &kernels::mac_loop_scalar),
#if defined(ONEBIT_HAVE_X86)
    kernel_row(Isa::avx2, &kernels::mac_loop_avx2),
    kernel_row(Isa::avxvnni, &kernels::mac_loop_avxvnni),
    kernel_row(Isa::avx512, &kernels::mac_loop_avx512),
#endif
    fallback_row(Isa::neon, Isa::scalar),
});

// max |x - zp| over the input range; throws on a zero point outside [-255, 255].
int64_t max_diff(const int32_t* zp, int64_t cin, bool x_signed) {
  const int32_t lo = x_signed ? -128 : 0, hi = x_signed ? 127 : 255;
  int64_t maxdiff = 0;
  for (int64_t c = 0; c < cin; ++c) {
    const int32_t z = zp ? zp[c] : 0;
    if (z < -255 || z > 255)
      fail("zero point " + std::to_string(z) + " of channel " + std::to_string(c) +
           " is outside [-255, 255]");
    maxdiff = std::max<int64_t>(maxdiff, std::max(std::abs(lo - z), std::abs(hi - z)));
  }
  return maxdiff;
}

// |y| <= K * max|x - zp| * 128 must fit int32 (never overflow silently). Returns the bound.
int64_t accumulator_bound(int64_t k, int64_t maxdiff) {
  if (k * maxdiff * 128 > int64_t{INT32_MAX})
    fail("K = " + std::to_string(k) + " taps with |x - zero_point| up to " +
         std::to_string(maxdiff) + " can overflow the int32 accumulator");
  return k * maxdiff * 128;
}

// The kernel an ISA runs for these zero points: the VNNI kernels need every zu in [0, 255].
Isa pick_kernel(Isa isa, const int32_t* zp, int64_t cin, bool x_signed) {
  if (isa != Isa::avx512 && isa != Isa::avxvnni) return isa;
  for (int64_t c = 0; c < cin; ++c) {
    const int32_t z = (zp ? zp[c] : 0) + (x_signed ? 128 : 0);
    if (z < 0 || z > 255) return Isa::avx2;
  }
  return isa;
}

// [cout block of 16][kh][pair][16][2] int16, zero padded.
void pack_pairs(const int8_t* w, Conv8Prepared& p) {
  const int64_t seg = int64_t{p.kw} * p.cin, s2 = (seg + 1) / 2, k2n = p.kh * s2;
  const int64_t cbn = (p.cout + 15) / 16;
  p.w16.assign(static_cast<size_t>(cbn * k2n * 32), 0);
  for (int64_t o = 0; o < p.cout; ++o) {
    int16_t* ob = p.w16.data() + (o / 16) * k2n * 32 + (o % 16) * 2;
    for (int i = 0; i < p.kh; ++i) {
      const int8_t* wr = w + (o * p.kh + i) * seg;
      int16_t* rb = ob + i * s2 * 32;
      for (int64_t t = 0; t < seg / 2; ++t) {
        rb[t * 32] = wr[2 * t];
        rb[t * 32 + 1] = wr[2 * t + 1];
      }
      if (seg % 2) rb[(seg / 2) * 32] = wr[seg - 1];
    }
  }
}

// [cout block of L][kh][quad][L][4] int8, zero padded, and the zero-point correction.
void pack_quads(const int8_t* w, Conv8Prepared& p) {
  const int64_t L = p.lanes;
  const int64_t seg = int64_t{p.kw} * p.cin, s4 = (seg + 3) / 4, k4n = p.kh * s4;
  const int64_t cbn = (p.cout + L - 1) / L, taps = int64_t{p.kh} * p.kw;
  p.w8.assign(static_cast<size_t>(cbn * k4n * 4 * L), 0);
  p.corr.assign(static_cast<size_t>(cbn * L), 0);
  p.zu.resize(static_cast<size_t>(p.cin));
  std::vector<int32_t> zu32(static_cast<size_t>(p.cin));
  for (int64_t c = 0; c < p.cin; ++c) {
    zu32[c] = p.zero_point[c] + (p.x_signed ? 128 : 0);
    p.zu[c] = static_cast<uint8_t>(zu32[c]);
  }
  for (int64_t o = 0; o < p.cout; ++o) {
    int8_t* ob = p.w8.data() + (o / L) * k4n * 4 * L + (o % L) * 4;
    const int8_t* wo = w + o * taps * p.cin;
    for (int i = 0; i < p.kh; ++i) {
      const int8_t* wr = wo + i * seg;
      int8_t* rb = ob + i * s4 * 4 * L;
      for (int64_t t = 0; t < seg / 4; ++t) std::memcpy(rb + t * 4 * L, wr + 4 * t, 4);
      if (seg % 4) std::memcpy(rb + (seg / 4) * 4 * L, wr + seg / 4 * 4, static_cast<size_t>(seg % 4));
    }
    uint64_t cs = 0;  // the correction, mod 2^64 then mod 2^32
    for (int64_t j = 0; j < taps; ++j) {
      const int8_t* wj = wo + j * p.cin;
      int64_t d = 0;
      for (int64_t c = 0; c < p.cin; ++c) d += int64_t{zu32[c]} * wj[c];
      cs += static_cast<uint64_t>(d);
    }
    p.corr[o] = static_cast<int32_t>(static_cast<uint32_t>(cs));
  }
}

}  // namespace

int64_t conv8_out_per_pixel(const Conv8Geom& g, OutputKind kind) {
  return output_per_pixel(kind, g.cout);
}

void conv8_geom_finish(Conv8Geom& g) {
  if (g.n < 0) fail("negative batch size");
  if (g.h < 1 || g.w < 1) fail("input H and W must be >= 1");
  if (g.cin < 1) fail("input channels must be >= 1");
  if (g.cout < 1) fail("output channels must be >= 1");
  if (g.kh < 1 || g.kw < 1) fail("kernel size must be >= 1");
  if (g.sh < 1 || g.sw < 1) fail("stride must be >= 1");
  if (g.ph_end == Conv8Geom::kSymmetric) g.ph_end = g.ph;
  if (g.pw_end == Conv8Geom::kSymmetric) g.pw_end = g.pw;
  if (g.ph < 0 || g.pw < 0 || g.ph_end < 0 || g.pw_end < 0) fail("padding must be >= 0");
  const int64_t hp = int64_t{g.h} + g.ph + g.ph_end, wp = int64_t{g.w} + g.pw + g.pw_end;
  if (hp < g.kh || wp < g.kw)
    fail("kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " is larger than the padded input " +
         std::to_string(hp) + "x" + std::to_string(wp));
  g.oh = (hp - g.kh) / g.sh + 1;
  g.ow = (wp - g.kw) / g.sw + 1;
}

std::shared_ptr<const Conv8Prepared> conv8_prepare(const int8_t* w, int64_t cout, int kh, int kw,
                                                   int64_t cin, const int32_t* zero_point,
                                                   bool x_signed, Isa isa, int threads) {
  (void)threads;
  require_isa(isa);
  return conv8_layout(w, cout, kh, kw, cin, zero_point, x_signed, isa);
}

std::shared_ptr<const Conv8Prepared> conv8_layout(const int8_t* w, int64_t cout, int kh, int kw,
                                                  int64_t cin, const int32_t* zero_point,
                                                  bool x_signed, Isa isa) {
  if (!w) fail("null weight pointer");
  if (cout < 1 || kh < 1 || kw < 1 || cin < 1) fail("weights need cout, kh, kw, cin >= 1");
  auto p = std::make_shared<Conv8Prepared>();
  p->isa = isa;
  p->cout = cout;
  p->cin = cin;
  p->kh = kh;
  p->kw = kw;
  p->x_signed = x_signed;
  p->ybound = accumulator_bound(int64_t{kh} * kw * cin, max_diff(zero_point, cin, x_signed));
  p->zero_point.assign(static_cast<size_t>(cin), 0);
  if (zero_point) std::copy(zero_point, zero_point + cin, p->zero_point.begin());
  p->kernel = pick_kernel(isa, zero_point, cin, x_signed);
  switch (p->kernel) {
    case Isa::avx2: p->lanes = 16; pack_pairs(w, *p); break;
    case Isa::avxvnni: p->lanes = 8; pack_quads(w, *p); break;
    case Isa::avx512: p->lanes = 16; pack_quads(w, *p); break;
    default: p->w8.assign(w, w + cout * kh * kw * cin); break;
  }
  return p;
}

void conv8(const Conv8Args& a, Isa isa, int threads) {
  check_threads(threads);
  require_isa(isa);
  const Conv8Geom& g = a.g;
  if (g.oh < 1 || g.ow < 1 || g.ph_end < 0 || g.pw_end < 0) fail("geometry not finished");
  check_output_stage(a.stage, g.cout);
  std::shared_ptr<const Conv8Prepared> local;
  const Conv8Prepared* p = a.prepared;
  if (p) {
    if (p->isa != isa)
      fail(std::string("weights were prepared for ISA '") + isa_name(p->isa) +
           "' but the call uses '" + isa_name(isa) + "'");
    if (p->cout != g.cout || p->kh != g.kh || p->kw != g.kw || p->cin != g.cin)
      fail("prepared weights are for a (" + std::to_string(p->cout) + ", " +
           std::to_string(p->kh) + ", " + std::to_string(p->kw) + ", " + std::to_string(p->cin) +
           ") OHWI layer, not (" + std::to_string(g.cout) + ", " + std::to_string(g.kh) + ", " +
           std::to_string(g.kw) + ", " + std::to_string(g.cin) + ")");
    if (p->x_signed != a.x_signed)
      fail(std::string("weights were prepared for ") + (p->x_signed ? "int8" : "uint8") +
           " input, got " + (a.x_signed ? "int8" : "uint8"));
  } else {
    if (!a.w) fail("null weight pointer");
    local = conv8_prepare(a.w, g.cout, g.kh, g.kw, g.cin, a.zero_point, a.x_signed, isa, threads);
    p = local.get();
  }
  if (!a.x || !a.y) fail("null input or output pointer");
  if (g.n == 0) return;
  conv8_table.get(p->kernel)(a, *p, threads);
}

double int8_mac_peak(Isa isa, double seconds) {
  require_isa(isa);
  if (!(seconds > 0)) throw std::invalid_argument("seconds must be > 0");
  const MacLoop loop = int8_mac_loop_table.get(isa);  // returns the multiply-adds done
  using clock = std::chrono::steady_clock;
  int64_t iters = 1024;
  for (;;) {
    const auto t0 = clock::now();
    const int64_t macs = loop(iters);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt >= seconds || iters > (int64_t{1} << 40)) return static_cast<double>(macs) / dt;
    iters = dt < seconds / 16 ? iters * 8 : static_cast<int64_t>(iters * (seconds / dt) * 1.05) + 1;
  }
}

}  // namespace onebit
