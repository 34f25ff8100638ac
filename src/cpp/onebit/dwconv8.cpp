// int8 depthwise convolution dispatcher: validation, the int32 accumulator proof, the kernel
// from the op's table (onebit/kernel_table.h).
#include "onebit/dwconv8.h"

#include <stdexcept>
#include <string>

#include "onebit/kernel_table.h"
#include "onebit/kernels/dwconv8_kernels.h"
#include "onebit/threadpool.h"

namespace onebit {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("depthwise conv: " + msg); }

// avxvnni runs the AVX2 kernel (vpdpbusd brings nothing to one multiply per channel and tap).
ONEBIT_AVX2_AVX512_TABLE(dwconv8, ONEBIT_NEON_ROW);
// 32-bit NEON flushes denormals to zero: it runs the scalar float kernel (ONEBIT_NEON64_ROW).
ONEBIT_AVX2_AVX512_TABLE(dwconv_f32, ONEBIT_NEON64_ROW);

// The checks both depthwise ops make of a call (ISA, threads, a finished geometry, pointers).
void check_call(const Conv8Geom& g, bool pointers_ok, Isa isa, int threads) {
  check_threads(threads);
  require_isa(isa);
  if (g.oh < 1 || g.ow < 1) fail("geometry not finished");
  if (g.cin != g.cout) fail("input and output channels must be equal");
  dwconv8_bound(g.kh, g.kw);
  if (!pointers_ok) fail("null input, weight, bias or output pointer");
}

}  // namespace

int64_t dwconv8_bound(int kh, int kw) {
  if (kh < 1 || kw < 1) fail("kernel size must be >= 1");
  const int64_t bound = int64_t{kh} * kw * 128 * 128;
  if (bound > int64_t{INT32_MAX})
    fail("a " + std::to_string(kh) + "x" + std::to_string(kw) + " kernel can overflow the int32 accumulator");
  return bound;
}

void dwconv8_geom_finish(Conv8Geom& g) {
  if (g.cin != g.cout)
    fail("input and output channels must be equal (depth multiplier 1), got " + std::to_string(g.cin) +
         " and " + std::to_string(g.cout));
  dwconv8_bound(g.kh, g.kw);
  try {
    conv8_geom_finish(g);
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    fail(m.substr(m.find(": ") + 2));
  }
}

void dwconv8(const DwConv8Args& a, Isa isa, int threads) {
  check_call(a.g, a.x && a.w && a.y, isa, threads);
  check_output_stage(a.stage, a.g.cout);
  if (a.g.n == 0) return;
  dwconv8_table.get(isa)(a, threads);
}

void dwconv_f32(const DwConvF32Args& a, Isa isa, int threads) {
  check_call(a.g, a.x && a.w && a.bias && a.y, isa, threads);
  if (a.g.n == 0) return;
  dwconv_f32_table.get(isa)(a, threads);
}

}  // namespace onebit
