// Per-ISA residual add kernels (declarations); each handles elements [i0, i1).
#pragma once
#include <algorithm>
#include <cstdint>

namespace onebit::kernels {

// Internal linkage: compiled with different ISA flags per translation unit (see pool_kernels.h).
namespace {

// The int8 add of one element: exact int64 fixed point, see onebit/add.h.
inline int8_t add_int8_one(int8_t a, int8_t b, int32_t ma, int32_t mb, int shift) {
  const int64_t t = int64_t{a} * ma + int64_t{b} * mb + (int64_t{1} << (shift - 1));
  const int64_t q = t >> shift;  // arithmetic shift = floor division by 2^shift
  return static_cast<int8_t>(std::min<int64_t>(127, std::max<int64_t>(-127, q)));
}

}  // namespace

#define ONEBIT_ADD_DECLARE(isa)                                                                 \
  void add_int8_##isa(const int8_t* a, const int8_t* b, int8_t* y, int32_t ma, int32_t mb,     \
                      int shift, int64_t i0, int64_t i1);                                      \
  void add_f32_##isa(const float* a, const float* b, float* y, int64_t i0, int64_t i1);

ONEBIT_ADD_DECLARE(scalar)
#if defined(ONEBIT_HAVE_X86)
ONEBIT_ADD_DECLARE(avx2)
#endif
#if defined(ONEBIT_HAVE_NEON)
void add_int8_neon(const int8_t* a, const int8_t* b, int8_t* y, int32_t ma, int32_t mb, int shift, int64_t i0,
                   int64_t i1);
#if defined(__aarch64__)  // float NEON kernels: aarch64 only (32-bit NEON flushes denormals)
void add_f32_neon(const float* a, const float* b, float* y, int64_t i0, int64_t i1);
#endif
#endif
#undef ONEBIT_ADD_DECLARE

}  // namespace onebit::kernels
