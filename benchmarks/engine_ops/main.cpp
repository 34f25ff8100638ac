// Times one engine variant on one case:  harness VARIANT CASE THREADS REPEATS [GAP_US]
// Prints one JSON object: samples (ms, sorted), and an FNV-1a hash of the output bytes so the
// driver can check that both variants computed identical results.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#define DECLARE(V)                                                                             \
  void ob_##V##_conv8(const uint8_t*, int, int, int, int, const int8_t*, int, int, int, int,   \
                      const int32_t*, int, const int32_t*, const int32_t*, const int8_t*,      \
                      const float*, const float*, int, void*, int);                            \
  void ob_##V##_maxpool_f32(const float*, int, int, int, int, int, int, int, float*, int);     \
  void ob_##V##_dense_f32(const float*, const float*, const float*, float*, int, int, int, int); \
  void ob_##V##_region(int, int, int64_t, double*);
extern "C" {
DECLARE(base)
DECLARE(cur)
}

struct Ops {
  decltype(&ob_cur_conv8) conv8;
  decltype(&ob_cur_maxpool_f32) maxpool_f32;
  decltype(&ob_cur_dense_f32) dense_f32;
  decltype(&ob_cur_region) region;
};

static uint64_t fnv(const void* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ull;
  return h;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: harness base|cur CASE THREADS REPEATS [GAP_US]\n");
    return 2;
  }
  const std::string variant = argv[1], name = argv[2];
  const int threads = std::atoi(argv[3]), repeats = std::atoi(argv[4]);
  const int gap_us = argc > 5 ? std::atoi(argv[5]) : 0;
  const Ops ops = variant == "base"
      ? Ops{ob_base_conv8, ob_base_maxpool_f32, ob_base_dense_f32, ob_base_region}
      : Ops{ob_cur_conv8, ob_cur_maxpool_f32, ob_cur_dense_f32, ob_cur_region};
  std::mt19937 rng(7);
  std::function<void()> fn;
  std::vector<char> out;
  // inputs (kept alive for the lambdas)
  std::vector<uint8_t> xu; std::vector<int8_t> w8, dir; std::vector<int32_t> zp, ia, ib;
  std::vector<float> xf, wf, sc, bf;
  double sink = 0;
  int a[8];
  if (std::sscanf(name.c_str(), "conv8:%d:%d:%d:%d:%d:%d:%d", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6]) == 7) {
    const int h = a[0], cin = a[1], cout = a[2], k = a[3], s = a[4], p = a[5], kind = a[6];
    const int oh = (h + 2 * p - k) / s + 1;
    xu.resize(size_t(h) * h * cin); for (auto& v : xu) v = rng();
    w8.resize(size_t(cout) * k * k * cin); for (auto& v : w8) v = int8_t(int(rng() % 255) - 127);
    zp.resize(cin); for (int c = 0; c < cin; ++c) zp[c] = cin <= 4 ? 124 - 8 * c : 0;
    ia.resize(cout); ib.resize(cout); dir.resize(cout); sc.resize(cout); bf.resize(cout);
    for (int o = 0; o < cout; ++o) { ia[o] = kind == 2 ? 3 + o % 5 : int(rng() % 2001) - 1000; ib[o] = int(rng() % 4001) - 2000;
      dir[o] = o % 3 ? 1 : -1; sc[o] = 0.001f * (1 + o % 7); bf[o] = 0.01f * (o % 11); }
    const size_t per_px = kind == 1 ? (cout + 63) / 64 * 8 : kind == 2 ? cout : size_t(cout) * 4;
    out.assign(size_t(oh) * oh * per_px, 0);
    fn = [&, h, cin, cout, k, s, p, kind] { ops.conv8(xu.data(), 1, h, h, cin, w8.data(), cout, k, s, p, zp.data(), kind, ia.data(), ib.data(), dir.data(), sc.data(), bf.data(), 16, out.data(), threads); };
  } else if (std::sscanf(name.c_str(), "maxpool:%d:%d:%d:%d:%d", &a[0], &a[1], &a[2], &a[3], &a[4]) == 5) {
    const int h = a[0], c = a[1], k = a[2], s = a[3], p = a[4], oh = (h + 2 * p - k) / s + 1;
    std::normal_distribution<float> nd;
    xf.resize(size_t(h) * h * c); for (auto& v : xf) v = nd(rng);
    out.assign(size_t(oh) * oh * c * 4, 0);
    fn = [&, h, c, k, s, p] { ops.maxpool_f32(xf.data(), 1, h, h, c, k, s, p, reinterpret_cast<float*>(out.data()), threads); };
  } else if (std::sscanf(name.c_str(), "dense:%d:%d:%d", &a[0], &a[1], &a[2]) == 3) {
    const int n = a[0], in = a[1], o = a[2];
    std::normal_distribution<float> nd;
    xf.resize(size_t(n) * in); for (auto& v : xf) v = nd(rng);
    wf.resize(size_t(o) * in); for (auto& v : wf) v = nd(rng);
    bf.resize(o); for (auto& v : bf) v = nd(rng);
    out.assign(size_t(n) * o * 4, 0);
    fn = [&, n, in, o] { ops.dense_f32(xf.data(), wf.data(), bf.data(), reinterpret_cast<float*>(out.data()), n, in, o, threads); };
  } else if (std::sscanf(name.c_str(), "region:%d", &a[0]) == 1) {
    const int64_t iters = a[0];
    fn = [&, iters] { ops.region(64, threads, iters, &sink); };
  } else {
    std::fprintf(stderr, "unknown case %s\n", name.c_str());
    return 2;
  }
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (gap_us > 0) {  // idle between calls (like the Python between a network's ops)
      const auto end = t1 + std::chrono::microseconds(gap_us);
      while (std::chrono::steady_clock::now() < end) {
      }
    }
  }
  std::sort(ms.begin(), ms.end());
  std::printf("{\"hash\": \"%016llx\", \"samples_ms\": [", static_cast<unsigned long long>(fnv(out.data(), out.size())));
  for (size_t i = 0; i < ms.size(); ++i) std::printf("%s%.5f", i ? ", " : "", ms[i]);
  std::printf("]}\n");
  return 0;
}
