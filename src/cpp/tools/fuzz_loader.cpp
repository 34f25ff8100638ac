// Seeded mutation fuzzer of the C++ loader (run it in a -DONEBIT_ASAN=ON build):
//
//   onebit-fuzz-loader [--iterations N] [--seed S] [--max-ms T] MODEL.onebit...
//
// Each input is one of the given valid files with 1 to 4 mutations (bit flips, byte writes,
// writes inside the JSON header, digit and token edits there, truncation, insertion, deletion, a
// new header length). The loader must either reject it with FormatError or accept it; an accepted
// file is also run once (scalar ISA, batch 1). Anything else - another exception, a crash or leak
// (AddressSanitizer), an input slower than --max-ms - is a failure. Prints one JSON line of
// figures; exit status 1 on any failure.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "onebit/runtime/executor.h"
#include "onebit/runtime/loader.h"

namespace rt = onebit::rt;

namespace {

uint64_t header_len(const std::vector<uint8_t>& d) {
  uint64_t n = 0;
  if (d.size() >= 8) std::memcpy(&n, d.data(), 8);
  return n;
}

void mutate(std::vector<uint8_t>& d, std::mt19937_64& rng) {
  if (d.empty()) return;
  const uint64_t hn = header_len(d);
  const size_t hend = static_cast<size_t>(std::min<uint64_t>(8 + hn, d.size()));
  auto pick = [&](size_t lo, size_t hi) { return lo + static_cast<size_t>(rng() % (hi > lo ? hi - lo : 1)); };
  auto in_header = [&] { return hend > 8 ? pick(8, hend) : pick(0, d.size()); };
  static const char* tokens[] = {"0", "-1", "1e400", "65", "4294967296", "true", "null", "[]", "{}", "\"\"",
                                 "\"bits\"", "\"f32\"", "\"int8\"", "2.5", "32767", "\"\\ud800\"", "[[[["};
  switch (rng() % 9) {
    case 0: d[pick(0, d.size())] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
    case 1: d[pick(0, d.size())] = static_cast<uint8_t>(rng()); break;
    case 2: d[in_header()] = static_cast<uint8_t>(rng()); break;
    case 3: {  // a digit of the header becomes another digit (shapes, offsets, attributes)
      for (int tries = 0; tries < 64; ++tries) {
        const size_t p = in_header();
        if (d[p] >= '0' && d[p] <= '9') {
          d[p] = static_cast<uint8_t>('0' + rng() % 10);
          break;
        }
      }
      break;
    }
    case 4: {  // a token replaces a few header bytes (the length field is left as it is)
      const std::string t = tokens[rng() % (sizeof(tokens) / sizeof(tokens[0]))];
      const size_t p = in_header();
      const size_t n = std::min<size_t>(1 + rng() % 4, d.size() - p);
      d.erase(d.begin() + static_cast<std::ptrdiff_t>(p), d.begin() + static_cast<std::ptrdiff_t>(p + n));
      d.insert(d.begin() + static_cast<std::ptrdiff_t>(p), t.begin(), t.end());
      break;
    }
    case 5: d.resize(pick(0, d.size() + 1)); break;
    case 6: {
      const size_t p = pick(0, d.size());
      d.insert(d.begin() + static_cast<std::ptrdiff_t>(p), 1 + rng() % 16, static_cast<uint8_t>(rng()));
      break;
    }
    case 7: {
      const size_t p = pick(0, d.size());
      d.erase(d.begin() + static_cast<std::ptrdiff_t>(p),
              d.begin() + static_cast<std::ptrdiff_t>(std::min(d.size(), p + 1 + rng() % 16)));
      break;
    }
    default: {
      if (d.size() < 8) break;
      uint64_t n = rng() % 3 ? hn + (rng() % 17) - 8 : rng();
      std::memcpy(d.data(), &n, 8);
      break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t iterations = 100000, seed = 1;
  double max_ms = 5000;
  std::vector<std::vector<uint8_t>> seeds;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--iterations" || a == "--seed" || a == "--max-ms") && i + 1 < argc) {
      const char* v = argv[++i];
      if (a == "--iterations") iterations = std::strtoull(v, nullptr, 10);
      else if (a == "--seed") seed = std::strtoull(v, nullptr, 10);
      else max_ms = std::strtod(v, nullptr);
    } else {
      std::ifstream f(a, std::ios::binary);
      if (!f) {
        std::fprintf(stderr, "onebit-fuzz-loader: cannot open %s\n", a.c_str());
        return 2;
      }
      seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
      rt::load_model(seeds.back().data(), seeds.back().size());  // a seed must be valid
    }
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "usage: onebit-fuzz-loader [--iterations N] [--seed S] [--max-ms T] MODEL.onebit...\n");
    return 2;
  }
  std::mt19937_64 rng(seed);
  uint64_t rejected = 0, accepted = 0, failures = 0;
  double worst = 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<uint8_t> zeros;
  for (uint64_t it = 0; it < iterations; ++it) {
    std::vector<uint8_t> d = seeds[rng() % seeds.size()];
    const int muts = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < muts; ++k) mutate(d, rng);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      auto m = rt::load_model(d.data(), d.size());
      ++accepted;
      rt::Executor exe(m, onebit::Isa::scalar, 1);
      zeros.assign(static_cast<size_t>(m->in_h * m->in_w * m->in_c), 0);
      std::vector<float> out(static_cast<size_t>(m->num_classes));
      try {
        exe.run(zeros.data(), 1, out.data());
      } catch (const std::invalid_argument&) {  // a kernel's own argument check (e.g. int32 bound)
      }
    } catch (const rt::FormatError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ++failures;
      std::fprintf(stderr, "iteration %llu: unexpected exception: %s\n", (unsigned long long)it, e.what());
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (ms > worst) worst = ms;
    if (ms > max_ms) {
      ++failures;
      std::fprintf(stderr, "iteration %llu: %.0f ms (limit %.0f)\n", (unsigned long long)it, ms, max_ms);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"iterations\": %llu, \"seed\": %llu, \"seeds\": %zu, \"rejected\": %llu, \"accepted\": %llu, "
              "\"failures\": %llu, \"worst_ms\": %.3f, \"seconds\": %.1f}\n",
              (unsigned long long)iterations, (unsigned long long)seed, seeds.size(), (unsigned long long)rejected,
              (unsigned long long)accepted, (unsigned long long)failures, worst, secs);
  return failures ? 1 : 0;
}
