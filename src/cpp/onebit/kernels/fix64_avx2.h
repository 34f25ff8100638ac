// int64-lane fixed-point rounding shared by the AVX2 kernel TUs (internal linkage: each TU keeps
// its own copy compiled with its own flags). Equal to the scalar floor division bit for bit.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace onebit::kernels {
namespace {

// floor(t / 2^S) per int64 lane, clamped to [-127, 127]; `sh` holds S, `bias_out` 2^(63-S).
// AVX2 lacks a 64-bit arithmetic shift, so shift (t + 2^63) logically: (t + 2^63) >>> S =
// floor(t / 2^S) + 2^(63-S) exactly because 2^S divides 2^63.
inline __m256i floor_shift_clamp127(__m256i t, __m128i sh, __m256i bias_out) {
  t = _mm256_xor_si256(t, _mm256_set1_epi64x(static_cast<int64_t>(0x8000000000000000ULL)));
  t = _mm256_sub_epi64(_mm256_srl_epi64(t, sh), bias_out);
  const __m256i hi = _mm256_set1_epi64x(127), lo = _mm256_set1_epi64x(-127);
  t = _mm256_blendv_epi8(t, hi, _mm256_cmpgt_epi64(t, hi));
  return _mm256_blendv_epi8(t, lo, _mm256_cmpgt_epi64(lo, t));
}

}  // namespace
}  // namespace onebit::kernels
