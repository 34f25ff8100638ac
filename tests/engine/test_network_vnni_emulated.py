"""The AVX-512 VNNI int8 convolution (conv8_avx512.cpp, conv8_vnni.h) cannot run on a CPU without AVX-512, so
this test compiles it against scalar emulations of the AVX-512 intrinsics it uses
(semantics from Intel's pseudocode: vpdpbusd = src + four u8*s8 products, int32 wrap-around),
links it with the real scalar reference and AVX2 output stage, and compares the two on a random
boundary grid (uint8 and int8 input, per-channel zero points, odd strides and paddings, all
output stages). It checks the kernel's layout, zero-point correction and padding logic; the real
instructions are exercised by test_network_conv8.py on CPUs that have avx512.
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from onebit.runtime.engine import engine

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "cpp"

FAKE_IMMINTRIN = r"""
#pragma once
#include_next <immintrin.h>
#include <cstdint>
#include <cstring>
// After the real header: the AVX-512 names the kernel uses now mean scalar emulations.
struct emu_m512i { int32_t v[16]; };
#define __m512i emu_m512i
#undef _mm512_setzero_si512
#undef _mm512_loadu_si512
#undef _mm512_storeu_si512
#undef _mm512_set1_epi32
#undef _mm512_set1_epi8
#undef _mm512_sub_epi32
#undef _mm512_add_epi32
#undef _mm512_dpbusd_epi32
#undef _mm512_reduce_add_epi32
#define _mm512_setzero_si512 emu_setzero
#define _mm512_loadu_si512 emu_loadu
#define _mm512_storeu_si512 emu_storeu
#define _mm512_set1_epi32 emu_set1_epi32
#define _mm512_set1_epi8 emu_set1_epi8
#define _mm512_sub_epi32 emu_sub_epi32
#define _mm512_add_epi32 emu_add_epi32
#define _mm512_dpbusd_epi32 emu_dpbusd_epi32
#define _mm512_reduce_add_epi32 emu_reduce_add_epi32
#undef _mm512_add_epi64
#undef _mm512_min_epi64
#undef _mm512_max_epi64
#undef _mm512_sra_epi64
#undef _mm512_set1_epi64
#undef _mm512_mul_epi32
#undef _mm512_srli_epi64
#undef _mm512_slli_epi64
#undef _mm512_mask_blend_epi32
#undef _mm512_cvtepi32_epi8
#undef _mm512_cvtsepi32_epi8
#undef _mm512_min_epi32
#undef _mm512_max_epi32
#undef _mm512_mullo_epi32
#undef _mm512_sra_epi32
#define _mm512_add_epi64 emu_add_epi64
#define _mm512_min_epi64 emu_min_epi64
#define _mm512_max_epi64 emu_max_epi64
#define _mm512_sra_epi64 emu_sra_epi64
#define _mm512_set1_epi64 emu_set1_epi64
#define _mm512_mul_epi32 emu_mul_epi32
#define _mm512_srli_epi64 emu_srli_epi64
#define _mm512_slli_epi64 emu_slli_epi64
#define _mm512_mask_blend_epi32 emu_mask_blend_epi32
#define _mm512_cvtepi32_epi8 emu_cvtepi32_epi8
#define _mm512_cvtsepi32_epi8 emu_cvtsepi32_epi8
#define _mm512_min_epi32 emu_min_epi32
#define _mm512_max_epi32 emu_max_epi32
#define _mm512_mullo_epi32 emu_mullo_epi32
#define _mm512_sra_epi32 emu_sra_epi32
inline emu_m512i emu_setzero() { emu_m512i r; for (int i = 0; i < 16; ++i) r.v[i] = 0; return r; }
inline emu_m512i emu_loadu(const void* p) { emu_m512i r; std::memcpy(r.v, p, 64); return r; }
inline void emu_storeu(void* p, emu_m512i a) { std::memcpy(p, a.v, 64); }
inline emu_m512i emu_set1_epi32(int32_t x) { emu_m512i r; for (int i = 0; i < 16; ++i) r.v[i] = x; return r; }
inline emu_m512i emu_set1_epi8(char x) { emu_m512i r; std::memset(r.v, x, 64); return r; }
inline emu_m512i emu_sub_epi32(emu_m512i a, emu_m512i b) {
  emu_m512i r;
  for (int i = 0; i < 16; ++i) r.v[i] = (int32_t)((uint32_t)a.v[i] - (uint32_t)b.v[i]);
  return r;
}
inline emu_m512i emu_add_epi32(emu_m512i a, emu_m512i b) {
  emu_m512i r;
  for (int i = 0; i < 16; ++i) r.v[i] = (int32_t)((uint32_t)a.v[i] + (uint32_t)b.v[i]);
  return r;
}
inline int32_t emu_reduce_add_epi32(emu_m512i a) {
  uint32_t s = 0;
  for (int i = 0; i < 16; ++i) s += (uint32_t)a.v[i];
  return (int32_t)s;
}
struct emu_q { int64_t q[8]; };
inline emu_q emu_get_q(emu_m512i a) { emu_q r; std::memcpy(r.q, a.v, 64); return r; }
inline emu_m512i emu_put_q(emu_q a) { emu_m512i r; std::memcpy(r.v, a.q, 64); return r; }
inline emu_m512i emu_set1_epi64(long long x) { emu_q r; for (int i = 0; i < 8; ++i) r.q[i] = x; return emu_put_q(r); }
#define EMU_Q2(name, expr) inline emu_m512i name(emu_m512i a_, emu_m512i b_) { \
  emu_q a = emu_get_q(a_), b = emu_get_q(b_), r; for (int i = 0; i < 8; ++i) r.q[i] = (expr); return emu_put_q(r); }
EMU_Q2(emu_add_epi64, (int64_t)((uint64_t)a.q[i] + (uint64_t)b.q[i]))
EMU_Q2(emu_min_epi64, a.q[i] < b.q[i] ? a.q[i] : b.q[i])
EMU_Q2(emu_max_epi64, a.q[i] > b.q[i] ? a.q[i] : b.q[i])
EMU_Q2(emu_mul_epi32, (int64_t)(int32_t)a.q[i] * (int32_t)b.q[i])  // the low dwords, signed
inline emu_m512i emu_sra_epi64(emu_m512i a_, __m128i c) {
  emu_q a = emu_get_q(a_); int64_t n; std::memcpy(&n, &c, 8); if (n > 63) n = 63;
  for (int i = 0; i < 8; ++i) a.q[i] >>= n; return emu_put_q(a);
}
inline emu_m512i emu_srli_epi64(emu_m512i a_, unsigned n) {
  emu_q a = emu_get_q(a_); for (int i = 0; i < 8; ++i) a.q[i] = n > 63 ? 0 : (int64_t)((uint64_t)a.q[i] >> n);
  return emu_put_q(a);
}
inline emu_m512i emu_slli_epi64(emu_m512i a_, unsigned n) {
  emu_q a = emu_get_q(a_); for (int i = 0; i < 8; ++i) a.q[i] = n > 63 ? 0 : (int64_t)((uint64_t)a.q[i] << n);
  return emu_put_q(a);
}
#define EMU_D2(name, expr) inline emu_m512i name(emu_m512i a, emu_m512i b) { \
  emu_m512i r; for (int i = 0; i < 16; ++i) r.v[i] = (expr); return r; }
EMU_D2(emu_min_epi32, a.v[i] < b.v[i] ? a.v[i] : b.v[i])
EMU_D2(emu_max_epi32, a.v[i] > b.v[i] ? a.v[i] : b.v[i])
EMU_D2(emu_mullo_epi32, (int32_t)((uint32_t)a.v[i] * (uint32_t)b.v[i]))
inline emu_m512i emu_mask_blend_epi32(unsigned k, emu_m512i a, emu_m512i b) {
  emu_m512i r; for (int i = 0; i < 16; ++i) r.v[i] = (k >> i) & 1 ? b.v[i] : a.v[i]; return r;
}
inline emu_m512i emu_sra_epi32(emu_m512i a, __m128i c) {
  int64_t n; std::memcpy(&n, &c, 8); if (n > 31) n = 31;
  for (int i = 0; i < 16; ++i) a.v[i] >>= n; return a;
}
inline __m128i emu_cvtepi32_epi8(emu_m512i a) {  // truncation
  int8_t b[16]; for (int i = 0; i < 16; ++i) b[i] = (int8_t)a.v[i];
  __m128i r; std::memcpy(&r, b, 16); return r;
}
inline __m128i emu_cvtsepi32_epi8(emu_m512i a) {  // signed saturation
  int8_t b[16];
  for (int i = 0; i < 16; ++i) b[i] = (int8_t)(a.v[i] > 127 ? 127 : a.v[i] < -128 ? -128 : a.v[i]);
  __m128i r; std::memcpy(&r, b, 16); return r;
}
inline emu_m512i emu_dpbusd_epi32(emu_m512i src, emu_m512i a, emu_m512i b) {
  emu_m512i r;
  for (int i = 0; i < 16; ++i) {
    uint8_t ab[4]; int8_t bb[4];
    std::memcpy(ab, &a.v[i], 4); std::memcpy(bb, &b.v[i], 4);
    int32_t s = 0;
    for (int j = 0; j < 4; ++j) s += int32_t(ab[j]) * int32_t(bb[j]);
    r.v[i] = (int32_t)((uint32_t)src.v[i] + (uint32_t)s);
  }
  return r;
}
"""

HARNESS = r"""
#include <cstdio>
#include <random>
#include <vector>
#include "onebit/kernels/conv8_kernels.h"
using namespace onebit;
int main() {
  std::mt19937 rng(20261123);
  auto ri = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int fails = 0, runs = 0;
  const int cins[] = {1, 3, 4, 7, 63, 64, 65, 129};
  for (int it = 0; it < 300; ++it) {
    Conv8Args a;
    Conv8Geom& g = a.g;
    g.n = ri(1, 2); g.h = ri(1, 11); g.w = ri(1, 11); g.cin = cins[ri(0, 7)]; g.cout = ri(1, 40);
    g.kh = ri(1, 5); g.kw = ri(1, 5); g.sh = ri(1, 3); g.sw = ri(1, 3); g.ph = ri(0, 3); g.pw = ri(0, 3);
    if (g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw) continue;
    conv8_geom_finish(g);
    a.x_signed = ri(0, 1);
    std::vector<uint8_t> x(g.n * g.h * g.w * g.cin);
    for (auto& v : x) v = (uint8_t)ri(0, 255);
    std::vector<int8_t> w(g.cout * g.kh * g.kw * g.cin);
    for (auto& v : w) v = (int8_t)ri(-128, 127);
    std::vector<int32_t> zp(g.cin);
    for (auto& z : zp) z = a.x_signed ? ri(-128, 127) : ri(0, 255);
    a.x = x.data(); a.w = w.data(); a.zero_point = zp.data();
    a.stage.kind = (OutputKind)(it % 4);
    std::vector<int32_t> t(g.cout), m(g.cout), b(g.cout);
    std::vector<int8_t> d(g.cout);
    std::vector<float> sc(g.cout), fb(g.cout);
    // shift 16: the int32 stage on y clamped to each channel's window; 26 (y*M past int32 and
    // no window): the exact int64 stage
    const int shift = (it / 4) % 2 ? 26 : 16;
    for (int o = 0; o < g.cout; ++o) {
      t[o] = ri(-50000, 50000); d[o] = ri(0, 1) ? 1 : -1; m[o] = ri(-5000, 5000) * (shift == 26 ? 256 : 1);
      b[o] = ri(-100000, 100000); sc[o] = ri(-100, 100) * 0.001f; fb[o] = ri(-100, 100) * 0.1f;
    }
    a.stage.threshold = t.data(); a.stage.direction = d.data(); a.stage.multiplier = m.data();
    a.stage.bias = b.data(); a.stage.shift = shift; a.stage.scale = sc.data(); a.stage.fbias = fb.data();
    const size_t bytes = g.n * g.oh * g.ow * conv8_out_per_pixel(g, a.stage.kind) *
                         output_elem_size(a.stage.kind);
    std::vector<char> y1(bytes), y2(bytes, 0x55);
    a.y = y1.data(); kernels::conv8_scalar(a, 1);
    a.y = y2.data();
    auto p = conv8_layout(a.w, g.cout, g.kh, g.kw, g.cin, a.zero_point, a.x_signed, Isa::avx512);
    if (p->kernel != Isa::avx512) { ++fails; std::printf("refused it=%d\n", it); continue; }
    kernels::conv8_avx512(a, *p, 1 + it % 2);
    ++runs;
    if (y1 != y2) {
      ++fails;
      std::printf("MISMATCH it=%d cin=%ld cout=%ld k=%dx%d s=%d,%d p=%d,%d signed=%d stage=%d\n", it,
                  (long)g.cin, (long)g.cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, (int)a.x_signed, it % 4);
    }
  }
  std::printf("runs=%d fails=%d\n", runs, fails);
  return fails != 0 || runs < 200;
}
"""


@pytest.mark.slow
def test_network_conv8_vnni_logic_under_emulation(tmp_path):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    if "avx2" not in engine.supported_isas():
        pytest.skip("the harness links the AVX2 output stage; this CPU has no avx2")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "immintrin.h").write_text(FAKE_IMMINTRIN)
    (tmp_path / "main.cpp").write_text(HARNESS)
    flags = ["-O0", "-std=c++17", f"-I{SRC}", "-DONEBIT_HAVE_X86=1"]  # -O0: fastest to build
    units = [
        (SRC / "onebit/kernels/conv8_avx512.cpp",  # emulated AVX-512, real AVX2 output stage
         [f"-I{tmp_path / 'fake'}", "-mavx2", "-mfma", "-mbmi2"]),
        (SRC / "onebit/kernels/conv8_avx2.cpp", ["-mavx2", "-mfma", "-mbmi2"]),
        (SRC / "onebit/kernels/conv8_avxvnni.cpp", ["-mavx2", "-mfma", "-mbmi2", "-mavxvnni"]),
        (SRC / "onebit/kernels/conv8_scalar.cpp", []),
        (SRC / "onebit/conv8.cpp", []),
        (SRC / "onebit/output.cpp", []),
        (SRC / "onebit/threadpool.cpp", []),
        (SRC / "onebit/isa.cpp", []),
        (SRC / "onebit/kernel_table.cpp", []),
        (tmp_path / "main.cpp", []),
    ]
    objs = [str(tmp_path / f"u{i}.o") for i in range(len(units))]
    procs = [subprocess.Popen([cxx, *flags, *extra, "-c", str(src), "-o", obj])
             for (src, extra), obj in zip(units, objs)]  # compile the units concurrently
    assert all(p.wait(timeout=300) == 0 for p in procs), "compilation failed"
    exe = tmp_path / "emu"
    subprocess.run([cxx, "-o", str(exe), *objs, "-lpthread"], check=True)
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "fails=0" in res.stdout
