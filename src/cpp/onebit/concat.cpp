// Channel concatenation (concat.h).
#include "onebit/concat.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "onebit/threadpool.h"

namespace onebit {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("concat: " + msg); }

constexpr int64_t kMinBytesPerThread = 1 << 16;

}  // namespace

void concat_bytes(const void* a, const void* b, void* y, int64_t pixels, int64_t abytes, int64_t bbytes,
                  int threads) {
  check_threads(threads);
  if (!a || !b || !y) fail("null input or output pointer");
  if (pixels < 0 || abytes < 1 || bbytes < 1) fail("pixel count must be >= 0 and element bytes >= 1");
  const int64_t yb = abytes + bbytes;
  auto pa = static_cast<const char*>(a), pb = static_cast<const char*>(b);
  auto py = static_cast<char*>(y);
  parallel_for(pixels, threads_for(pixels * yb, kMinBytesPerThread, threads), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      std::memcpy(py + p * yb, pa + p * abytes, static_cast<size_t>(abytes));
      std::memcpy(py + p * yb + abytes, pb + p * bbytes, static_cast<size_t>(bbytes));
    }
  });
}

void concat_bits(const uint64_t* a, const uint64_t* b, uint64_t* y, int64_t pixels, int64_t ca, int64_t cb,
                 int threads) {
  check_threads(threads);
  if (!a || !b || !y) fail("null input or output pointer");
  if (pixels < 0 || ca < 1 || cb < 1) fail("pixel count must be >= 0 and channel counts >= 1");
  const int64_t wa = (ca + 63) / 64, wb = (cb + 63) / 64, wy = (ca + cb + 63) / 64;
  const int64_t base = ca / 64;
  const int r = static_cast<int>(ca % 64);
  parallel_for(pixels, threads_for(pixels * wy * 8, kMinBytesPerThread, threads), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const uint64_t* xa = a + p * wa;
      const uint64_t* xb = b + p * wb;
      uint64_t* o = y + p * wy;
      std::memcpy(o, xa, static_cast<size_t>(wa) * 8);  // a's padding bits are 0
      for (int64_t k = wa; k < wy; ++k) o[k] = 0;
      if (r == 0) {
        std::memcpy(o + base, xb, static_cast<size_t>(wb) * 8);
        continue;
      }
      for (int64_t k = 0; k < wb; ++k) {
        o[base + k] |= xb[k] << r;
        if (base + k + 1 < wy) o[base + k + 1] |= xb[k] >> (64 - r);
      }
    }
  });
}

}  // namespace onebit
