// Dispatchers of the bit-plane first layer (bplanes.h): validation, kernel tables, threads.
// The heavy part, the M binary convolutions, is the binary conv of each ISA (bconv.h); the plane
// transform and the combine + output stage are scalar on every ISA (named fall-back rows).
#include "onebit/bplanes.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "onebit/kernel_table.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {

template <class Fn>
KernelTable<Fn> scalar_table(const char* op, Fn fn) {
  return KernelTable<Fn>(op, {kernel_row(Isa::scalar, fn), fallback_row(Isa::avx2, Isa::scalar),
                              fallback_row(Isa::avx512, Isa::scalar), fallback_row(Isa::avxvnni, Isa::scalar),
                              fallback_row(Isa::neon, Isa::scalar)});
}

const auto bitplanes_table = scalar_table("bitplanes", &kernels::bitplanes_scalar);
const auto planes_combine_table = scalar_table("planes_combine", &kernels::planes_combine_scalar);

void check_bits(int bits) {
  if (bits < 1 || bits > 8) throw std::invalid_argument("weight_bits must be in [1, 8], got " + std::to_string(bits));
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
  const int64_t per = std::max<int64_t>(1, 4096 / channels);
  parallel_for((pixels + per - 1) / per, threads, [&](int64_t t0, int64_t t1) {
    kernel(u, t0 * per, std::min(pixels, t1 * per), channels, planes, nplanes, out);
  });
}

std::shared_ptr<const PreparedWeights> prepare_bconv_planes_weights(const uint64_t* w, int weight_bits, int64_t cout,
                                                                    int64_t kh, int64_t kw, int64_t cin, Isa isa,
                                                                    int threads) {
  check_bits(weight_bits);
  return prepare_bconv_weights(w, weight_bits * cout, kh, kw, cin, isa, threads);
}

void bconv2d_planes(const BConvArgs& a, int weight_bits, Isa isa, int threads) {
  check_bits(weight_bits);
  const BConvShape& s = a.s;
  if (a.weight_mask) throw std::invalid_argument("bconv2d_planes takes no weight mask");
  // |y| <= (2^M - 1) * K must fit the int32 accumulator
  if (s.k_bits() > ((int64_t{1} << 31) - 1) / ((int64_t{1} << weight_bits) - 1))
    throw std::invalid_argument("bconv2d_planes: (2^M - 1) * KH*KW*Cin exceeds the int32 accumulator");
  check_output_stage(a.stage, s.cout);
  const auto combine = planes_combine_table.get(isa);
  const int64_t npix = s.out_h() * s.out_w();
  const int64_t ch = weight_bits * s.cout;
  std::vector<int32_t> acc(static_cast<size_t>(npix * ch));
  BConvArgs b = a;
  b.s.n = 1;
  b.s.cout = ch;
  b.stage = OutputStage{};  // int32: the raw per-plane dot products
  b.out = acc.data();
  const int64_t in_words = s.h * s.w * s.words();
  const int64_t per = std::max<int64_t>(1, 2048 / std::max<int64_t>(1, ch));
  for (int64_t n = 0; n < s.n; ++n) {
    b.x = a.x + n * in_words;
    bconv2d(b, isa, threads);
    parallel_for((npix + per - 1) / per, threads, [&](int64_t t0, int64_t t1) {
      const int64_t p0 = t0 * per, p1 = std::min(npix, t1 * per);
      combine(acc.data() + p0 * ch, p1 - p0, s.cout, weight_bits, a.stage, n * npix + p0, a.out);
    });
  }
}

}  // namespace onebit
