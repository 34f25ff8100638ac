// Kernel equality program (no Python): every SIMD kernel compiled into this build is compared
// bit for bit with the scalar reference on a boundary grid (channel counts around word
// boundaries, K around the 16-bit accumulator bound, odd sizes, strides, padding, 1/2/3
// threads), and the scalar reference with a direct loop of the definition (docs/format.md).
// Built by scripts/test-arm.sh for each target and run there under emulation; runs the same on
// any architecture. With --default-isa it only prints the ISA ONEBIT_ISA selects, or the error;
// with --capabilities only the supported ISAs and CPU features (cpu_features()). Prints one line per failure, the cases run per op and ISA, and a closing
// line "N passed, N failed". Exit status 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "onebit/bconv.h"
#include "onebit/bitpack.h"
#include "onebit/bplanes.h"
#include "onebit/isa.h"
#include "onebit/kernel_table.h"
#include "onebit/add.h"
#include "onebit/affine.h"
#include "onebit/concat.h"
#include "onebit/conv8.h"
#include "onebit/densef.h"
#include "onebit/dwconv8.h"
#include "onebit/pool.h"

using namespace onebit;

namespace {

int64_t g_passed = 0, g_failed = 0;
std::map<std::string, int64_t> g_cases;  // "op isa" -> cases

void record(bool ok, const std::string& op, Isa isa, const std::string& what) {
  g_cases[op + " " + isa_name(isa)] += 1;
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL %s %s: %s\n", op.c_str(), isa_name(isa), what.c_str());
  }
}

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  int64_t range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(next() % uint64_t(hi - lo + 1)); }
};

// Random packed words for `rows` rows of `cin` channels, padding bits 0. fill: 0 random,
// 1 all ones (drives popcounts to their maximum), 2 all zeros.
std::vector<uint64_t> packed(Rng& r, int64_t rows, int64_t cin, int fill) {
  const int64_t W64 = (cin + 63) / 64;
  std::vector<uint64_t> v(static_cast<size_t>(rows * W64));
  const uint64_t last = cin % 64 ? (uint64_t{1} << (cin % 64)) - 1 : ~uint64_t{0};
  for (int64_t i = 0; i < rows * W64; ++i) {
    uint64_t w = fill == 0 ? r.next() : fill == 1 ? ~uint64_t{0} : 0;
    if (i % W64 == W64 - 1) w &= last;
    v[static_cast<size_t>(i)] = w;
  }
  return v;
}

std::string shape_str(const BConvShape& s, int threads, const char* extra) {
  char b[256];
  std::snprintf(b, sizeof b, "n%lld h%lld w%lld cin%lld cout%lld k%lldx%lld s%lld p%lld+%lld%s t%d %s",
                (long long)s.n, (long long)s.h, (long long)s.w, (long long)s.cin, (long long)s.cout,
                (long long)s.kh, (long long)s.kw, (long long)s.stride, (long long)s.pad, (long long)s.pad_end,
                s.pad_value ? " one" : "", threads, extra);
  return b;
}

// y by the definition: T*Cin - 2*popcount over in-bounds taps (or kept - 2*popcount(... AND m));
// one-padding: every tap, an out-of-bounds one with input bits 0 (+1).
std::vector<int32_t> direct_int32(const BConvShape& s, const uint64_t* x, const uint64_t* w, const uint64_t* m) {
  const int64_t W64 = s.words(), OH = s.out_h(), OW = s.out_w();
  std::vector<int32_t> y(static_cast<size_t>(s.n * OH * OW * s.cout));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t co = 0; co < s.cout; ++co) {
          int64_t acc = 0;
          for (int64_t kh = 0; kh < s.kh; ++kh)
            for (int64_t kw = 0; kw < s.kw; ++kw) {
              const int64_t ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
              const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
              if (!inside && s.pad_value == 0) continue;
              for (int64_t wd = 0; wd < W64; ++wd) {
                const uint64_t xv = inside ? x[((n * s.h + ih) * s.w + iw) * W64 + wd] : 0;
                const int64_t wi = ((co * s.kh + kh) * s.kw + kw) * W64 + wd;
                const uint64_t mv = m ? m[wi] : ~uint64_t{0};
                const int64_t bits = m ? __builtin_popcountll(mv) : std::min<int64_t>(64, s.cin - wd * 64);
                acc += bits - 2 * __builtin_popcountll((xv ^ w[wi]) & mv);
              }
            }
          y[static_cast<size_t>(((n * OH + oh) * OW + ow) * s.cout + co)] = static_cast<int32_t>(acc);
        }
  return y;
}

struct Stage {
  std::vector<int32_t> t, m, b;
  std::vector<int8_t> d;
  std::vector<float> scale, fbias;
  OutputStage st;
};

Stage make_stage(Rng& r, OutputKind kind, int64_t cout, int64_t K) {
  Stage g;
  g.st.kind = kind;
  for (int64_t c = 0; c < cout; ++c) {
    g.t.push_back(static_cast<int32_t>(r.range(-K, K)));
    g.d.push_back(r.next() & 1 ? 1 : -1);
    g.m.push_back(static_cast<int32_t>(r.range(-(1 << 20), 1 << 20)));
    g.b.push_back(static_cast<int32_t>(r.range(-(1 << 24), 1 << 24)));
    g.scale.push_back(static_cast<float>(r.range(-100000, 100000)) * 1e-5f);
    g.fbias.push_back(static_cast<float>(r.range(-100000, 100000)) * 1e-3f);
  }
  g.st.threshold = g.t.data();
  g.st.direction = g.d.data();
  g.st.multiplier = g.m.data();
  g.st.bias = g.b.data();
  g.st.shift = static_cast<int>(r.range(1, 31));
  g.st.scale = g.scale.data();
  g.st.fbias = g.fbias.data();
  return g;
}

size_t out_bytes(const BConvShape& s, OutputKind kind) {
  const size_t pix = static_cast<size_t>(s.n * s.out_h() * s.out_w());
  switch (kind) {
    case OutputKind::int32: return pix * s.cout * 4;
    case OutputKind::bits: return pix * s.out_words() * 8;
    case OutputKind::int8: return pix * s.cout;
    case OutputKind::f32: return pix * s.cout * 4;
  }
  return 0;
}

const char* kind_name(OutputKind k) {
  switch (k) {
    case OutputKind::int32: return "int32";
    case OutputKind::bits: return "bits";
    case OutputKind::int8: return "int8";
    case OutputKind::f32: return "float";
  }
  return "?";
}

// Mask kinds: 0 none, 1 random weights, 2 word (whole 64-channel words of a tap, per channel),
// 3 channel (whole output channels), 4 block (the same (tap, word) units pruned in 8 consecutive
// output channels; the kept units whole or random), 5 all kept.
const char* mask_name(int kind) {
  static const char* names[] = {"", "mask-random", "mask-word", "mask-channel", "mask-block", "mask-all"};
  return names[kind];
}
std::vector<uint64_t> make_mask(Rng& r, const BConvShape& s, int kind) {
  const int64_t W64 = s.words(), taps = s.kh * s.kw;
  std::vector<uint64_t> m = packed(r, s.cout * taps, s.cin, 1);
  std::vector<int> unit(static_cast<size_t>(taps * W64));  // block: 0 pruned, 1 whole, 2 random
  for (int64_t co = 0; co < s.cout; ++co) {
    const bool drop_channel = kind == 3 && (r.next() % 3 == 0);
    if (kind == 4 && co % 8 == 0)
      for (int& u : unit) u = static_cast<int>(r.next() % 3);
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t wd = 0; wd < W64; ++wd) {
        uint64_t& v = m[static_cast<size_t>((co * taps + t) * W64 + wd)];
        if (kind == 1) v &= r.next();
        if (kind == 2 && r.next() % 3 == 0) v = 0;
        if (kind == 4 && unit[static_cast<size_t>(t * W64 + wd)] != 1)
          v &= unit[static_cast<size_t>(t * W64 + wd)] == 0 ? 0 : r.next();
        if (drop_channel) v = 0;
      }
  }
  return m;
}

const std::vector<Isa>& simd_isas() {
  static const std::vector<Isa> v = [] {
    std::vector<Isa> out;
    for (Isa isa : supported_isas())
      if (isa != Isa::scalar) out.push_back(isa);
    return out;
  }();
  return v;
}

// One geometry: every output kind, plain / prepared / masked, every SIMD ISA vs scalar, and
// scalar int32 vs the definition.
void bconv_case(Rng& r, const BConvShape& s, int threads, int fill, int mask_kind, bool all_kinds) {
  const std::vector<uint64_t> x = packed(r, s.n * s.h * s.w, s.cin, fill == 1 ? 1 : 0);
  std::vector<uint64_t> w = packed(r, s.cout * s.kh * s.kw, s.cin, fill == 1 ? 2 : 0);
  std::vector<uint64_t> m;
  if (mask_kind) {
    m = make_mask(r, s, mask_kind);
    for (size_t i = 0; i < w.size(); ++i) w[i] &= m[i];
  }
  const char* mk = mask_name(mask_kind);
  const std::string op = mask_kind ? "bconv-masked" : (s.h == 1 && s.w == 1 && s.kh == 1 ? "bdense" : "bconv");
  {
    BConvArgs a;
    a.x = x.data();
    a.w = w.data();
    a.weight_mask = mask_kind ? m.data() : nullptr;
    a.s = s;
    std::vector<int32_t> got(static_cast<size_t>(s.n * s.out_h() * s.out_w() * s.cout));
    a.out = got.data();
    bconv2d(a, Isa::scalar, threads);
    record(got == direct_int32(s, x.data(), w.data(), mask_kind ? m.data() : nullptr), op, Isa::scalar,
           shape_str(s, threads, mk) + " int32 vs definition");
  }
  for (OutputKind kind : {OutputKind::int32, OutputKind::bits, OutputKind::int8, OutputKind::f32}) {
    if (!all_kinds && kind != OutputKind::int32 && kind != OutputKind::bits) continue;
    Stage g = make_stage(r, kind, s.cout, s.k_bits());
    BConvArgs a;
    a.x = x.data();
    a.w = w.data();
    a.weight_mask = mask_kind ? m.data() : nullptr;
    a.s = s;
    a.stage = g.st;
    const size_t bytes = out_bytes(s, kind);
    std::vector<unsigned char> ref(bytes, 0xA5), got(bytes, 0x5A);
    a.out = ref.data();
    bconv2d(a, Isa::scalar, threads);
    for (Isa isa : simd_isas()) {
      for (int prepared = 0; prepared < 2; ++prepared) {
        std::fill(got.begin(), got.end(), 0x5A);
        BConvArgs b = a;
        b.out = got.data();
        std::shared_ptr<const PreparedWeights> p;
        if (prepared) {
          p = prepare_bconv_weights(w.data(), s.cout, s.kh, s.kw, s.cin, isa, threads,
                                    mask_kind ? m.data() : nullptr);
          b.prepared = p.get();
          b.w = nullptr;
          b.weight_mask = nullptr;
        }
        bconv2d(b, isa, threads);
        record(got == ref, op, isa,
               shape_str(s, threads, mk) + " " + kind_name(kind) + (prepared ? " prepared" : ""));
      }
    }
  }
}

void bconv_grid() {
  Rng r(1);
  // Channel counts around the 64-bit word and the 128-bit vector.
  const int64_t cins[] = {1, 63, 64, 65, 127, 128, 129, 192, 257};
  const int64_t couts[] = {1, 3, 4, 5, 63, 64, 65};
  int64_t i = 0;
  for (int64_t cin : cins)
    for (int64_t cout : couts) {
      BConvShape s;
      s.n = 1 + (i % 2);
      s.h = 1 + (i * 3) % 6;
      s.w = 2 + (i * 5) % 7;
      s.cin = cin;
      s.cout = cout;
      const int k = static_cast<int>(i % 4);  // 3x3, 1x1, 5x3, 2x2
      s.kh = k == 0 ? 3 : k == 1 ? 1 : k == 2 ? 5 : 2;
      s.kw = k == 0 ? 3 : k == 1 ? 1 : k == 2 ? 3 : 2;
      s.stride = 1 + (i % 3 == 2);
      s.pad = s.pad_end = (i % 2 && s.kh > 1 && s.kw > 1) ? 1 : 0;
      s.h = std::max(s.h, s.kh - 2 * s.pad);
      s.w = std::max(s.w, s.kw - 2 * s.pad);
      bconv_case(r, s, 1 + static_cast<int>(i % 3), 0, 0, true);
      ++i;
    }
  // 3x3 layers with stride 1/2 and padding 0/1 at word-multiple widths.
  for (int64_t cin : {64, 128, 256, 512})
    for (int stride : {1, 2})
      for (int pad : {0, 1})
        for (int threads : {1, 2, 3}) {
          BConvShape s;
          s.n = 1;
          s.h = 5;
          s.w = 6;
          s.cin = cin;
          s.cout = 68;
          s.kh = s.kw = 3;
          s.stride = stride;
          s.pad = s.pad_end = pad;
          bconv_case(r, s, threads, 0, 0, true);
        }
  // Padding before / after the input (Keras "same": the odd one after) and one-padding (+1),
  // plain and pruned, around the word edges; 3x3 and 5x5 fast and general paths.
  for (int value : {0, 1})
    for (const auto& pe : {std::pair<int, int>{0, 1}, {1, 0}, {1, 2}, {2, 2}, {1, 1}})
      for (int64_t cin : {63, 64, 65, 129})
        for (int k : {3, 5}) {
          BConvShape s;
          s.n = 1 + cin % 2;
          s.h = 6 + cin % 3;
          s.w = 7;
          s.cin = cin;
          s.cout = 9 + cin % 4;
          s.kh = s.kw = k;
          s.stride = 1 + (k == 3 && pe.first == 0);
          s.pad = pe.first;
          s.pad_end = pe.second;
          s.pad_value = value;
          bconv_case(r, s, 1 + static_cast<int>(cin % 3), 0, 0, cin == 65);
          bconv_case(r, s, 2, 0, 1 + static_cast<int>(cin % 3), false);
        }
  // K = KH*KW*Cin around the 16-bit accumulator bound (32767 / 32768), with popcounts at their
  // maximum (x all ones, w all zeros) and random.
  for (int64_t cin : {32767, 32768, 3640, 3641})
    for (int fill : {0, 1}) {
      BConvShape s;
      s.cin = cin;
      s.cout = 5;
      s.kh = s.kw = cin < 10000 ? 3 : 1;
      s.h = s.w = s.kh;
      bconv_case(r, s, 2, fill, 0, true);
    }
  // K large enough that a 16-bit lane overflows without a flush (> 4095 vectors per dot).
  for (int fill : {0, 1}) {
    BConvShape s;
    s.cin = 600001;
    s.cout = 5;
    bconv_case(r, s, 1, fill, 0, false);
  }
  // Dense layers (1x1 over a 1x1 image) at batch sizes 1..3.
  for (int64_t cin : {1, 64, 100, 1000, 4097})
    for (int64_t n : {1, 3}) {
      BConvShape s;
      s.n = n;
      s.cin = cin;
      s.cout = 10 + cin % 7;
      bconv_case(r, s, static_cast<int>(n), 0, 0, true);
    }
  // Pruned layers: random, word, channel, block and all-kept masks.
  for (int mk : {1, 2, 3, 4, 5})
    for (int64_t cin : {63, 64, 65, 130})
      for (int64_t k : {1, 3}) {
        BConvShape s;
        s.n = 1;
        s.h = 4;
        s.w = 5;
        s.cin = cin;
        s.cout = 9;
        s.kh = s.kw = k;
        s.pad = s.pad_end = k == 3 ? 1 : 0;
        s.stride = cin % 2 ? 2 : 1;
        bconv_case(r, s, 1 + static_cast<int>(cin % 3), 0, mk, true);
      }
  // Block and channel pruning over two 64-channel spans (groups of 8, 4 and 1 channels).
  for (int mk : {3, 4})
    for (int64_t cout : {70, 128}) {
      BConvShape s;
      s.n = 1;
      s.h = 5;
      s.w = 4;
      s.cin = 192;
      s.cout = cout;
      s.kh = s.kw = 3;
      s.pad = 1;
      bconv_case(r, s, cout == 70 ? 2 : 3, 0, mk, true);
    }
  for (int fill : {0, 1}) {  // pruned, K at the accumulator bound
    BConvShape s;
    s.cin = 32768;
    s.cout = 3;
    bconv_case(r, s, 1, fill, 3, false);
  }
}

// The NEON masked kernel's group layout skips what block and channel pruning remove: a 3x3,
// 128-channel layer (two words per tap) whose channels 0-7 keep only word 1 of the centre tap,
// 8-11 nothing, 12-15 everything. Expected: 8-11 listed as pruned channels (y = 0, never
// computed); groups of 0-7 read one full one-word run in kernel row 1 and nothing else; groups
// of 12-15 one full run of the whole row (6 words) per kernel row.
void masked_layout() {
  if (!isa_supported(Isa::neon)) return;
  const int64_t cout = 16, taps = 9, W64 = 2;
  std::vector<uint64_t> m(static_cast<size_t>(cout * taps * W64), 0), w(m.size(), 0);
  for (int64_t co = 0; co < cout; ++co)
    for (int64_t i = 0; i < taps * W64; ++i)
      if ((co < 8 && i == 4 * W64 + 1) || co >= 12) m[static_cast<size_t>(co * taps * W64 + i)] = ~uint64_t{0};
  const auto p = prepare_bconv_weights(w.data(), cout, 3, 3, 128, Isa::neon, 1, m.data());
  bool ok = p->ng_dead == std::vector<int32_t>{8, 9, 10, 11} && p->ng_span.size() == 2;
  for (size_t g = 0; ok && g + 1 < p->ng_first.size(); ++g) {
    const bool centre_only = p->ng_chan[static_cast<size_t>(p->ng_first[g])] < 8;
    for (int64_t kh = 0; kh < 3; ++kh) {
      std::vector<int32_t> segs(p->ng_seg.begin() + 3 * p->ng_rows[g * 3 + kh],
                                p->ng_seg.begin() + 3 * p->ng_rows[g * 3 + kh + 1]);
      const std::vector<int32_t> want = centre_only ? (kh == 1 ? std::vector<int32_t>{3, 4, 1} : std::vector<int32_t>{})
                                                    : std::vector<int32_t>{0, 6, 1};
      ok = ok && segs == want;
    }
  }
  record(ok, "bconv-masked-layout", Isa::neon, "pruned channels left out, pruned words of a block never read");
}

void bitpack_grid() {
  Rng r(2);
  const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, NAN, -NAN, INFINITY, -INFINITY, 1e-40f, -1e-40f};
  for (int64_t c : {1, 7, 63, 64, 65, 127, 128, 129, 200, 256})
    for (int64_t pixels : {1, 3, 17})
      for (int threads : {1, 2, 3}) {
        std::vector<float> xf(static_cast<size_t>(pixels * c));
        std::vector<int8_t> xi(xf.size());
        for (size_t i = 0; i < xf.size(); ++i) {
          xf[i] = (r.next() % 4 == 0) ? specials[r.next() % 10] : static_cast<float>(r.range(-1000, 1000)) * 0.01f;
          xi[i] = static_cast<int8_t>(r.range(-128, 127));
        }
        const size_t words = static_cast<size_t>(pixels * ((c + 63) / 64));
        std::vector<uint64_t> ref_f(words), ref_i(words);
        bitpack_f32(xf.data(), pixels, c, ref_f.data(), Isa::scalar, threads);
        bitpack_i8(xi.data(), pixels, c, ref_i.data(), Isa::scalar, threads);
        char what[96];
        std::snprintf(what, sizeof what, "pixels %lld channels %lld t%d", (long long)pixels, (long long)c, threads);
        bool def_ok = true;  // scalar vs the definition: bit = (x < 0), padding 0
        for (int64_t p = 0; p < pixels; ++p)
          for (int64_t ch = 0; ch < ((c + 63) / 64) * 64; ++ch) {
            const uint64_t word = ref_f[static_cast<size_t>(p * ((c + 63) / 64) + ch / 64)];
            const bool bit = (word >> (ch % 64)) & 1;
            const bool want = ch < c && xf[static_cast<size_t>(p * c + ch)] < 0;
            if (bit != want) def_ok = false;
          }
        record(def_ok, "bitpack-f32", Isa::scalar, std::string(what) + " vs definition");
        for (Isa isa : simd_isas()) {
          std::vector<uint64_t> got(words, 0x5A5A);
          bitpack_f32(xf.data(), pixels, c, got.data(), isa, threads);
          record(got == ref_f, "bitpack-f32", isa, what);
          std::fill(got.begin(), got.end(), 0x5A5A);
          bitpack_i8(xi.data(), pixels, c, got.data(), isa, threads);
          record(got == ref_i, "bitpack-i8", isa, what);
        }
      }
}

// Floats with the values SIMD float code gets wrong most easily: signed zeros, denormals,
// infinities, NaNs, plus ordinary values.
float tricky_float(Rng& r) {
  static const float specials[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 1e-45f, INFINITY, -INFINITY, NAN, -NAN, 3e38f};
  if (r.next() % 5 == 0) return specials[r.next() % 10];
  return static_cast<float>(r.range(-100000, 100000)) * 1e-3f;
}

// Floats equal bit for bit, except that any NaN equals any NaN: which input NaN an operation on
// two NaNs returns (sign, payload) is left to the implementation by IEEE 754, and a compiler may
// commute the operands of an add.
bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(std::isnan(a[i]) && std::isnan(b[i]))) return false;
  return true;
}

void pool_grid() {
  Rng r(3);
  struct Win {
    int k, s, p;
    bool ceil;
  };
  const Win wins[] = {{2, 2, 0, false}, {3, 2, 1, false}, {3, 1, 1, true}, {3, 2, 1, true}, {1, 1, 0, false}};
  int64_t i = 0;
  for (int64_t c : {1, 2, 3, 7, 8, 15, 16, 17, 33, 64, 130})
    for (const Win& wn : wins) {
      PoolGeom g;
      g.n = 1 + i % 2;
      g.h = 3 + (i * 3) % 5;
      g.w = 4 + (i * 5) % 5;
      g.c = c;
      g.kh = g.kw = wn.k;
      g.sh = g.sw = wn.s;
      g.ph = g.pw = wn.p;
      g.ceil_mode = wn.ceil;
      pool_geom_finish(g);
      const int threads = 1 + static_cast<int>(i % 3);
      const bool cip = i % 2;
      ++i;
      const size_t in = static_cast<size_t>(g.n * g.h * g.w * g.c), out = static_cast<size_t>(g.n * g.oh * g.ow * g.c);
      std::vector<uint64_t> xb(in);
      std::vector<int8_t> xi(in);
      std::vector<float> xf(in);
      for (size_t k = 0; k < in; ++k) {
        xb[k] = r.next() | r.next();  // bits biased to 1 so AND results are not all zero
        xi[k] = static_cast<int8_t>(r.range(-128, 127));
        xf[k] = tricky_float(r);
      }
      char what[128];
      std::snprintf(what, sizeof what, "n%lld h%lld w%lld c%lld k%d s%d p%d ceil%d cip%d t%d", (long long)g.n,
                    (long long)g.h, (long long)g.w, (long long)c, wn.k, wn.s, wn.p, wn.ceil, cip, threads);
      const int64_t hw = g.h * g.w;
      for (Isa isa : simd_isas()) {
        {
          std::vector<uint64_t> a(out, 1), b(out, 2);
          maxpool_bits(xb.data(), a.data(), g, Isa::scalar, threads);
          maxpool_bits(xb.data(), b.data(), g, isa, threads);
          record(a == b, "maxpool-bits", isa, what);
        }
        {
          std::vector<int8_t> a(out, 1), b(out, 2);
          maxpool_int8(xi.data(), a.data(), g, Isa::scalar, threads);
          maxpool_int8(xi.data(), b.data(), g, isa, threads);
          record(a == b, "maxpool-int8", isa, what);
          avgpool_int8(xi.data(), a.data(), g, cip, Isa::scalar, threads);
          avgpool_int8(xi.data(), b.data(), g, cip, isa, threads);
          record(a == b, "avgpool-int8", isa, what);
        }
        {
          std::vector<float> a(out, 1.0f), b(out, 2.0f);
          maxpool_f32(xf.data(), a.data(), g, Isa::scalar, threads);
          maxpool_f32(xf.data(), b.data(), g, isa, threads);
          record(same_bytes(a, b), "maxpool-f32", isa, what);
          avgpool_f32(xf.data(), a.data(), g, cip, Isa::scalar, threads);
          avgpool_f32(xf.data(), b.data(), g, cip, isa, threads);
          record(same_bytes(a, b), "avgpool-f32", isa, what);
        }
        {
          const size_t go = static_cast<size_t>(g.n * c);
          std::vector<int8_t> a(go, 1), b(go, 2);
          global_avgpool_int8(xi.data(), a.data(), g.n, hw, c, Isa::scalar, threads);
          global_avgpool_int8(xi.data(), b.data(), g.n, hw, c, isa, threads);
          record(a == b, "gap-int8", isa, what);
          std::vector<float> fa(go, 1.0f), fb(go, 2.0f);
          global_avgpool_int8_f32(xi.data(), fa.data(), g.n, hw, c, 0.37f, Isa::scalar, threads);
          global_avgpool_int8_f32(xi.data(), fb.data(), g.n, hw, c, 0.37f, isa, threads);
          record(same_bytes(fa, fb), "gap-int8-f32", isa, what);
          global_avgpool_f32(xf.data(), fa.data(), g.n, hw, c, Isa::scalar, threads);
          global_avgpool_f32(xf.data(), fb.data(), g.n, hw, c, isa, threads);
          record(same_bytes(fa, fb), "gap-f32", isa, what);
        }
      }
    }
}

void add_grid() {
  Rng r(4);
  // (ma, mb, shift): int32-safe sums, sums that need int64, saturation both ways.
  const int32_t params[][3] = {{1, 1, 1}, {3, -5, 2}, {1 << 20, 1 << 20, 21}, {2147483647, -2147483647, 31},
                               {-2147483647, -2147483647, 1}, {12345, 54321, 16}};
  for (int64_t count : {0, 1, 7, 8, 9, 31, 100, 4097, 9000})
    for (const auto& pr : params) {
      const int threads = 1 + static_cast<int>(count % 3);
      std::vector<int8_t> a(static_cast<size_t>(count)), b(a.size());
      std::vector<float> fa(a.size()), fb(a.size());
      for (size_t k = 0; k < a.size(); ++k) {
        a[k] = static_cast<int8_t>(r.range(-128, 127));
        b[k] = static_cast<int8_t>(r.range(-128, 127));
        fa[k] = tricky_float(r);
        fb[k] = tricky_float(r);
      }
      char what[96];
      std::snprintf(what, sizeof what, "count %lld ma %d mb %d shift %d t%d", (long long)count, pr[0], pr[1], pr[2],
                    threads);
      {
        std::vector<int8_t> y(a.size(), 3);  // scalar vs the definition
        add_int8(a.data(), b.data(), y.data(), count, pr[0], pr[1], pr[2], Isa::scalar, threads);
        bool ok = true;
        for (size_t k = 0; k < a.size(); ++k) {
          int64_t t = (int64_t{a[k]} * pr[0] + int64_t{b[k]} * pr[1] + (int64_t{1} << (pr[2] - 1))) >> pr[2];
          t = std::min<int64_t>(127, std::max<int64_t>(-127, t));
          ok = ok && y[k] == t;
        }
        record(ok, "add-int8", Isa::scalar, std::string(what) + " vs definition");
      }
      for (Isa isa : simd_isas()) {
        std::vector<int8_t> y0(a.size(), 1), y1(a.size(), 2);
        add_int8(a.data(), b.data(), y0.data(), count, pr[0], pr[1], pr[2], Isa::scalar, threads);
        add_int8(a.data(), b.data(), y1.data(), count, pr[0], pr[1], pr[2], isa, threads);
        record(y0 == y1, "add-int8", isa, what);
        std::vector<float> f0(a.size(), 1.0f), f1(a.size(), 2.0f);
        add_f32(fa.data(), fb.data(), f0.data(), count, Isa::scalar, threads);
        add_f32(fa.data(), fb.data(), f1.data(), count, isa, threads);
        record(same_bytes(f0, f1), "add-f32", isa, what);
      }
    }
}

void affine_grid() {
  Rng r(11);
  for (int64_t c : {1, 7, 8, 9, 15, 16, 17, 33, 64, 100})
    for (int64_t pixels : {0, 1, 3, 50, 2000}) {
      const int threads = 1 + static_cast<int>((c + pixels) % 3);
      std::vector<float> x(static_cast<size_t>(pixels * c)), sc(static_cast<size_t>(c)), bi(sc.size());
      for (float& v : x) v = tricky_float(r);
      for (size_t k = 0; k < sc.size(); ++k) {
        sc[k] = k % 5 == 0 ? tricky_float(r) : static_cast<float>(r.range(-1000, 1000)) * 1e-3f;
        bi[k] = k % 7 == 0 ? tricky_float(r) : static_cast<float>(r.range(-1000, 1000)) * 1e-2f;
      }
      char what[64];
      std::snprintf(what, sizeof what, "pixels %lld c %lld t%d", (long long)pixels, (long long)c, threads);
      for (Isa isa : simd_isas()) {
        std::vector<float> y0(x.size(), 1.0f), y1(x.size(), 2.0f);
        affine_f32(x.data(), sc.data(), bi.data(), y0.data(), pixels, c, Isa::scalar, threads);
        affine_f32(x.data(), sc.data(), bi.data(), y1.data(), pixels, c, isa, threads);
        record(same_bytes(y0, y1), "affine-f32", isa, what);
      }
    }
}

void dense_f32_grid() {
  Rng r(5);
  // n >= kDenseF32ManyRows takes AVX-512's outer-product kernel: row tails of 1-3, output tails
  // inside and across its 16-lane vectors and 64-output blocks
  for (int64_t in : {1, 3, 4, 7, 8, 9, 16, 33, 100, 257})
    for (int64_t out : {1, 3, 4, 5, 10, 16, 17, 63, 64, 65, 130})
      for (int64_t n : {1, 2, 5, 9, 70}) {
        const int threads = 1 + static_cast<int>((in + out + n) % 3);
        std::vector<float> x(static_cast<size_t>(n * in)), w(static_cast<size_t>(out * in)), b(static_cast<size_t>(out));
        for (float& v : x) v = tricky_float(r);
        for (float& v : w) v = r.next() % 7 == 0 ? tricky_float(r) : static_cast<float>(r.range(-1000, 1000)) * 1e-3f;
        for (float& v : b) v = static_cast<float>(r.range(-1000, 1000)) * 1e-2f;
        char what[80];
        std::snprintf(what, sizeof what, "n%lld in%lld out%lld t%d", (long long)n, (long long)in, (long long)out, threads);
        for (Isa isa : simd_isas())
          for (int with_bias = 0; with_bias < 2; ++with_bias) {
            std::vector<float> y0(static_cast<size_t>(n * out), 1.0f), y1(y0.size(), 2.0f);
            const float* bias = with_bias ? b.data() : nullptr;
            dense_f32(x.data(), w.data(), bias, y0.data(), n, in, out, Isa::scalar, threads);
            dense_f32(x.data(), w.data(), bias, y1.data(), n, in, out, isa, threads);
            record(same_bytes(y0, y1), "dense-f32", isa, std::string(what) + (with_bias ? " bias" : ""));
          }
      }
}

// int8 convolution: uint8 / int8 input, zero points inside and outside the signed-byte range of
// the dot-product formulation, K near the int32 bound, every output stage, strides and padding.
void conv8_grid() {
  Rng r(6);
  struct Case {
    int64_t cin, cout;
    int k, s, p;
    bool sgn;
    int zp_kind;  // 0: zero, 1: random within the input's range, 2: outside it (uint8: negative,
                  // int8: 128..255), where the dot-product form does not apply
    int fill = 0;  // 1: extremes (x at its maximum, w = -128 / 127): |y| near the int32 bound
  };
  std::vector<Case> cases;
  int64_t i = 0;
  for (int64_t cin : {1, 3, 8, 15, 16, 17, 32, 64})
    for (int64_t cout : {1, 4, 5, 64, 65}) {
      const int k = i % 3 == 0 ? 3 : i % 3 == 1 ? 1 : 7;
      cases.push_back({cin, cout, k, 1 + static_cast<int>(i % 2), k / 2 * static_cast<int>(i % 2 == 0),
                       i % 2 == 1, static_cast<int>(i % 3)});
      ++i;
    }
  // K*max|x - zp|*128 just under 2^31: baseline (zp -255) and dot-product (zp 0) formulations.
  cases.push_back({3640, 5, 3, 1, 0, false, 3, 1});
  cases.push_back({7300, 5, 3, 1, 0, false, 0, 1});
  for (const Case& c : cases) {
    Conv8Geom g;
    g.n = 1 + c.cout % 2;
    g.h = c.fill ? c.k : std::max(c.k, 5);
    g.w = c.fill ? c.k + 1 : std::max(c.k, 6);
    g.cin = c.cin;
    g.cout = c.cout;
    g.kh = g.kw = c.k;
    g.sh = g.sw = c.s;
    g.ph = g.pw = c.p;
    conv8_geom_finish(g);
    const size_t in = static_cast<size_t>(g.n * g.h * g.w * g.cin);
    std::vector<uint8_t> x(in);
    for (auto& v : x) v = c.fill ? 255 : static_cast<uint8_t>(r.next());
    std::vector<int8_t> w(static_cast<size_t>(g.cout * g.kh * g.kw * g.cin));
    for (size_t k = 0; k < w.size(); ++k)
      w[k] = c.fill ? static_cast<int8_t>(k / (w.size() / g.cout) % 2 ? 127 : -128) : static_cast<int8_t>(r.range(-128, 127));
    std::vector<int32_t> zp(static_cast<size_t>(g.cin));
    for (auto& z : zp)
      z = c.zp_kind == 3 ? -255
          : c.zp_kind == 0 ? 0
          : c.zp_kind == 1 ? static_cast<int32_t>(c.sgn ? r.range(-128, 127) : r.range(0, 255))
                           : static_cast<int32_t>(c.sgn ? r.range(128, 255) : r.range(-255, -1));
    for (int kind = 0; kind < 4; ++kind) {
      Conv8Args a;
      a.x = x.data();
      a.x_signed = c.sgn;
      a.zero_point = zp.data();
      a.w = w.data();
      a.g = g;
      Stage st = make_stage(r, static_cast<OutputKind>(kind), g.cout, 1 << 20);
      a.stage = st.st;
      const size_t esz = kind == 1 ? 8 : kind == 2 ? 1 : 4;
      const size_t bytes = static_cast<size_t>(g.n * g.oh * g.ow * conv8_out_per_pixel(g, a.stage.kind)) * esz;
      std::vector<unsigned char> ref(bytes, 1), got(bytes, 2);
      const int threads = 1 + static_cast<int>((c.cin + c.cout + kind) % 3);
      a.y = ref.data();
      conv8(a, Isa::scalar, threads);
      char what[160];
      std::snprintf(what, sizeof what, "n%lld cin%lld cout%lld k%d s%d p%d %s zp%d %s t%d", (long long)g.n,
                    (long long)c.cin, (long long)c.cout, c.k, c.s, c.p, c.sgn ? "int8" : "uint8", c.zp_kind,
                    kind_name(static_cast<OutputKind>(kind)), threads);
      for (Isa isa : simd_isas()) {
        a.y = got.data();
        std::fill(got.begin(), got.end(), 2);
        conv8(a, isa, threads);
        record(got == ref, "conv8", isa, what);
      }
    }
  }
}

// popcount_peak's loop (popcount_loop, the table row each ISA times) against the definition
// iters * sum popcount(a[i] XOR b[i]), for the ISAs whose loop computes it (scalar, neon; the x86
// loops follow their conv kernel's own access pattern): word counts around the 16-bit lane
// flush (4 * 4092 words) with random and all-differing operands (every lane at its maximum),
// popcount_peak's rate for the ISA's method, and the errors for bad sizes and methods.
void popcount_grid() {
  Rng r(7);
  std::vector<Isa> isas = {Isa::scalar};
  for (Isa isa : simd_isas())
    if (isa == Isa::neon) isas.push_back(isa);
  for (int64_t words : {0, 4, 8, 12, 256, 1000, 16364, 16368, 16372, 16384, 32768, 65540})
    for (int fill : {0, 1})
      for (int64_t iters : {1, 3}) {
        std::vector<uint64_t> a(static_cast<size_t>(words)), b(static_cast<size_t>(words));
        uint64_t want = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          a[i] = fill ? ~uint64_t{0} : r.next();
          b[i] = fill ? 0 : r.next();
          want += static_cast<uint64_t>(__builtin_popcountll(a[i] ^ b[i]));
        }
        want *= static_cast<uint64_t>(iters);
        for (Isa isa : isas)
          record(popcount_loop(isa, a.data(), b.data(), words, iters) == want, "popcount-loop", isa,
                 std::to_string(words) + " words x " + std::to_string(iters) + (fill ? " all differing" : " random"));
      }
  for (Isa isa : isas) {
    const double rate = popcount_peak(isa, 0.002, isa == Isa::neon ? "vcnt" : "builtin");
    record(rate > 0 && std::isfinite(rate), "popcount-peak", isa, "positive rate: " + std::to_string(rate));
    bool ok = true;
    for (int64_t words : {-4, 3, 6}) {
      try {
        uint64_t z[8] = {};
        popcount_loop(isa, z, z, words, 1);
        ok = false;
      } catch (const std::invalid_argument&) {
      }
    }
    try {
      popcount_peak(isa, 0.001, "split");
      ok = false;
    } catch (const std::invalid_argument&) {
    }
    record(ok, "popcount-peak", isa, "bad word counts and an unknown method rejected");
  }
}

// The depthwise grids' geometries: 3x3 stride 1 / 2 padding 1, 1x1, and Keras "same" with stride
// 2 (0 before, 1 after the input: uneven padding, `padding_end`) on both axes or one.
void dw_geometry(Conv8Geom& g, int geo) {
  g.kh = g.kw = geo == 2 ? 1 : 3;
  g.sh = g.sw = geo == 1 || geo >= 3 ? 2 : 1;
  g.ph = g.pw = geo == 2 || geo == 3 ? 0 : 1;
  if (geo == 3) g.ph_end = g.pw_end = 1;  // before 0, after 1
  if (geo == 4) { g.ph = 0; g.ph_end = 1; g.pw_end = 2; }  // rows 0 / 1, columns 1 / 2
}

// int8 depthwise convolution: channels around the 16 / 32 / 64 blocks, odd sizes, stride 1 / 2,
// padding (symmetric and uneven), extreme products (x = -128, w = -128 / 127), every output
// stage; the scalar kernel against a direct loop of the definition, every SIMD kernel against the
// scalar one.
void dwconv8_grid() {
  Rng r(7);
  int64_t i = 0;
  for (int64_t c : {1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 129})
    for (int geo = 0; geo < 5; ++geo, ++i) {
      Conv8Geom g;
      g.n = 1 + i % 2;
      g.h = 3 + i % 7;
      g.w = 2 + (i * 5) % 9;
      g.cin = g.cout = c;
      dw_geometry(g, geo);
      dwconv8_geom_finish(g);
      const bool extreme = i % 5 == 0;
      std::vector<int8_t> x(static_cast<size_t>(g.n * g.h * g.w * c)), w(static_cast<size_t>(g.kh * g.kw * c));
      for (auto& v : x) v = extreme ? -128 : static_cast<int8_t>(r.next());
      for (size_t k = 0; k < w.size(); ++k) w[k] = extreme ? (k % 2 ? 127 : -128) : static_cast<int8_t>(r.next());
      // the definition, int64
      std::vector<int32_t> direct(static_cast<size_t>(g.n * g.oh * g.ow * c));
      for (int64_t n = 0; n < g.n; ++n)
        for (int64_t oy = 0; oy < g.oh; ++oy)
          for (int64_t ox = 0; ox < g.ow; ++ox)
            for (int64_t ch = 0; ch < c; ++ch) {
              int64_t s = 0;
              for (int ki = 0; ki < g.kh; ++ki)
                for (int kj = 0; kj < g.kw; ++kj) {
                  const int64_t iy = oy * g.sh - g.ph + ki, ix = ox * g.sw - g.pw + kj;
                  if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
                    s += int64_t{x[static_cast<size_t>(((n * g.h + iy) * g.w + ix) * c + ch)]} *
                         w[static_cast<size_t>((ki * g.kw + kj) * c + ch)];
                }
              direct[static_cast<size_t>(((n * g.oh + oy) * g.ow + ox) * c + ch)] = static_cast<int32_t>(s);
            }
      for (int kind = 0; kind < 4; ++kind) {
        DwConv8Args a;
        a.x = x.data();
        a.w = w.data();
        a.g = g;
        Stage st = make_stage(r, static_cast<OutputKind>(kind), c, 9 * 128 * 128);
        a.stage = st.st;
        const size_t esz = kind == 1 ? 8 : kind == 2 ? 1 : 4;
        const size_t bytes = static_cast<size_t>(g.n * g.oh * g.ow * output_per_pixel(a.stage.kind, c)) * esz;
        std::vector<unsigned char> ref(bytes, 1), got(bytes, 2);
        const int threads = 1 + static_cast<int>((c + kind) % 3);
        a.y = ref.data();
        dwconv8(a, Isa::scalar, threads);
        char what[160];
        std::snprintf(what, sizeof what, "n%lld h%lld w%lld c%lld k%d s%d p%d,%d e%d,%d %s%s t%d", (long long)g.n,
                      (long long)g.h, (long long)g.w, (long long)c, g.kh, g.sh, g.ph, g.pw, g.ph_end, g.pw_end,
                      kind_name(static_cast<OutputKind>(kind)), extreme ? " extreme" : "", threads);
        if (kind == 0)
          record(std::memcmp(ref.data(), direct.data(), bytes) == 0, "dwconv8-definition", Isa::scalar, what);
        for (Isa isa : simd_isas()) {
          a.y = got.data();
          std::fill(got.begin(), got.end(), 2);
          dwconv8(a, isa, threads);
          record(got == ref, "dwconv8", isa, what);
        }
      }
    }
}

// float32 depthwise convolution: every SIMD kernel equals the scalar one bit for bit (taps in
// row-major order, product then sum, no FMA), channels around the 4 / 8 / 16 lanes, stride 1 / 2,
// symmetric and uneven padding.
void dwconv_f32_grid() {
  Rng r(9);
  int64_t i = 0;
  for (int64_t c : {1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 64})
    for (int geo : {0, 1, 3, 4}) {
      ++i;
      Conv8Geom g;
      g.n = 1 + i % 2;
      g.h = 4 + i % 5;
      g.w = 3 + (i * 3) % 7;
      g.cin = g.cout = c;
      dw_geometry(g, geo);
      dwconv8_geom_finish(g);
      std::vector<float> x(static_cast<size_t>(g.n * g.h * g.w * c)), w(static_cast<size_t>(g.kh * g.kw * c)),
          b(static_cast<size_t>(c));
      for (auto* v : {&x, &w, &b})
        for (auto& f : *v) f = tricky_float(r);
      DwConvF32Args a;
      a.x = x.data();
      a.w = w.data();
      a.bias = b.data();
      a.g = g;
      std::vector<float> ref(static_cast<size_t>(g.n * g.oh * g.ow * c), 1.0f), got(ref.size(), 2.0f);
      const int threads = 1 + static_cast<int>(c % 3);
      a.y = ref.data();
      dwconv_f32(a, Isa::scalar, threads);
      char what[128];
      std::snprintf(what, sizeof what, "n%lld h%lld w%lld c%lld s%d p%d,%d e%d,%d t%d", (long long)g.n, (long long)g.h,
                    (long long)g.w, (long long)c, g.sh, g.ph, g.pw, g.ph_end, g.pw_end, threads);
      for (Isa isa : simd_isas()) {
        std::fill(got.begin(), got.end(), 2.0f);
        a.y = got.data();
        dwconv_f32(a, isa, threads);
        record(same_bytes(got, ref), "dwconv-f32", isa, what);
      }
    }
}

// Channel concatenation of packed bits (the same code on every ISA): against the bit-by-bit
// definition at aligned and unaligned offsets, padding bits of the result 0.
void concat_bits_grid() {
  Rng r(8);
  for (int64_t ca : {1, 6, 63, 64, 65, 128, 130})
    for (int64_t cb : {1, 58, 64, 70, 129}) {
      const int64_t pixels = 3, wa = (ca + 63) / 64, wb = (cb + 63) / 64, wy = (ca + cb + 63) / 64;
      const std::vector<uint64_t> a = packed(r, pixels, ca, 0), b = packed(r, pixels, cb, 0);
      std::vector<uint64_t> y(static_cast<size_t>(pixels * wy), ~uint64_t{0}), want(y.size(), 0);
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t c = 0; c < ca + cb; ++c) {
          const uint64_t bit = c < ca ? a[p * wa + c / 64] >> (c % 64) & 1 : b[p * wb + (c - ca) / 64] >> ((c - ca) % 64) & 1;
          want[p * wy + c / 64] |= bit << (c % 64);
        }
      concat_bits(a.data(), b.data(), y.data(), pixels, ca, cb, 1 + static_cast<int>(ca % 3));
      record(y == want, "concat-bits", Isa::scalar,
             "ca" + std::to_string(ca) + " cb" + std::to_string(cb));
    }
}

// Bit-plane first layer: bitplanes against its definition, bconv2d_planes against the sum of
// 2^j-weighted scalar binary convs, and every other ISA against scalar, bit for bit.
void bplanes_grid() {
  Rng r(7);
  for (int64_t c : {1, 3, 9})
    for (int64_t np : {1, 7, 24, 64, 65}) {
      if (np > 8 * c) continue;
      const int64_t pixels = 13, words = (np + 63) / 64;
      std::vector<uint8_t> u(static_cast<size_t>(pixels * c));
      for (auto& v : u) v = static_cast<uint8_t>(r.range(0, 255));
      std::vector<int32_t> planes;
      for (int64_t i = 0; i < np; ++i) planes.push_back(static_cast<int32_t>(i * (8 * c) / np));
      std::vector<uint64_t> ref(static_cast<size_t>(pixels * words));
      bitplanes(u.data(), pixels, c, planes.data(), np, ref.data(), Isa::scalar, 1);
      bool def_ok = true;
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t i = 0; i < words * 64; ++i) {
          const bool bit = (ref[static_cast<size_t>(p * words + i / 64)] >> (i % 64)) & 1;
          const bool want = i < np && !((u[static_cast<size_t>(p * c + planes[size_t(i)] / 8)] >> (planes[size_t(i)] % 8)) & 1);
          if (bit != want) def_ok = false;
        }
      char what[64];
      std::snprintf(what, sizeof what, "channels %lld planes %lld", (long long)c, (long long)np);
      record(def_ok, "bitplanes", Isa::scalar, std::string(what) + " vs definition");
      for (Isa isa : simd_isas()) {
        std::vector<uint64_t> got(ref.size(), 0x5A5A);
        bitplanes(u.data(), pixels, c, planes.data(), np, got.data(), isa, 2);
        record(got == ref, "bitplanes", isa, what);
      }
    }
  for (int bits : {1, 3, 8})
    for (int64_t cin : {1, 7, 8, 24, 65, 250}) {
      BConvShape s;
      s.n = 2; s.h = 6; s.w = 7; s.cin = cin; s.cout = 9; s.kh = 3; s.kw = 3; s.stride = 1 + (cin % 2); s.pad = 1; s.pad_end = 1;
      const std::vector<uint64_t> x = packed(r, s.n * s.h * s.w, cin, 0);
      const std::vector<uint64_t> w = packed(r, bits * s.cout * s.kh * s.kw, cin, 0);
      const size_t outs = static_cast<size_t>(s.n * s.out_h() * s.out_w() * s.cout);
      BConvArgs a;
      a.x = x.data(); a.w = w.data(); a.s = s;
      std::vector<int32_t> ref(outs);
      a.out = ref.data();
      const auto pw = prepare_planes_weights(w.data(), false, bits, s.cout, s.kh, s.kw, cin);
      bconv2d_planes(a, *pw, Isa::scalar, 1);
      std::vector<int64_t> sum(outs, 0);  // definition: sum_j 2^j * (binary conv of weight plane j)
      for (int j = 0; j < bits; ++j) {
        std::vector<int32_t> y(outs);
        BConvArgs b = a;
        b.w = w.data() + static_cast<size_t>(j * s.cout * s.kh * s.kw * s.words());
        b.out = y.data();
        bconv2d(b, Isa::scalar, 1);
        for (size_t i = 0; i < outs; ++i) sum[i] += int64_t{y[i]} << j;
      }
      bool def_ok = true;
      for (size_t i = 0; i < outs; ++i) def_ok = def_ok && sum[i] == ref[i];
      char what[64];
      std::snprintf(what, sizeof what, "M %d cin %lld", bits, (long long)cin);
      record(def_ok, "bconv2d-planes", Isa::scalar, std::string(what) + " vs definition");
      for (Isa isa : simd_isas()) {
        std::vector<int32_t> got(outs, 0x5A5A);
        a.out = got.data();
        bconv2d_planes(a, *pw, isa, 2);
        record(got == ref, "bconv2d-planes", isa, what);
      }
    }
}

// Every op's table has a row (own kernel or named fall-back) for every ISA this CPU supports.
void kernel_table_rows() {
  for (const KernelTableInfo& t : kernel_tables())
    for (Isa isa : supported_isas())
      record(t.runs[static_cast<int>(isa)] >= 0, "kernel-table", isa, t.op + " has a row");
}

// ISAs this CPU or build lacks: a clear exception from every entry point, never a crash.
void isa_errors() {
  for (Isa isa : {Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::neon}) {
    if (isa_supported(isa)) continue;
    bool ok = true;
    uint64_t x = 0, w = 0, y = 0;
    float f = 1.0f;
    try {
      bitpack_f32(&f, 1, 1, &y, isa, 1);
      ok = false;
    } catch (const std::invalid_argument&) {
    }
    try {
      bdense(&x, &w, 1, 1, 1, OutputStage{}, &y, isa, 1);
      ok = false;
    } catch (const std::invalid_argument&) {
    }
    try {
      set_active_isa(isa);
      ok = false;
    } catch (const std::runtime_error&) {
    }
    record(ok, "unsupported-isa-error", isa, "bitpack, bdense and set_active_isa reject it");
  }
}

}  // namespace

// "supported: ISA ...; features: name ..." (features "-" when none): the capability report.
std::string capability_line() {
  std::string out = "supported:";
  for (Isa isa : supported_isas()) out += std::string(" ") + isa_name(isa);
  out += "; features:";
  const std::vector<std::string> f = cpu_features();
  for (const std::string& name : f) out += " " + name;
  if (f.empty()) out += " -";
  return out;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--capabilities") == 0) {  // the capability report only
    std::printf("%s\n", capability_line().c_str());
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "--default-isa") == 0) {  // ONEBIT_ISA handling only
    try {
      std::printf("default ISA: %s\n", isa_name(default_isa()));
      return 0;
    } catch (const std::exception& e) {
      std::printf("error: %s\n", e.what());
      return 3;
    }
  }
  std::printf("%s; default %s\nkernel tables (ISA=kernel it runs):\n%s", capability_line().c_str(),
              isa_name(default_isa()),
              describe_kernel_tables().c_str());
  try {
    kernel_table_rows();
    bitpack_grid();
    bconv_grid();
    masked_layout();
    popcount_grid();
    pool_grid();
    add_grid();
    dense_f32_grid();
    affine_grid();
    conv8_grid();
    dwconv8_grid();
    dwconv_f32_grid();
    concat_bits_grid();
    bplanes_grid();
    isa_errors();
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    ++g_failed;
  }
  std::printf("cases per op and ISA:\n");
  for (const auto& [k, v] : g_cases) std::printf("  %-32s %lld\n", k.c_str(), (long long)v);
  std::printf("%lld passed, %lld failed\n", (long long)g_passed, (long long)g_failed);
  return g_failed ? 1 : 0;
}
