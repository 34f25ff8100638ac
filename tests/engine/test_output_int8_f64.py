"""The int8 output stage (b) with the converter's wide fixed point (multipliers ~2^27, biases up
to 2^31, shift 25-26: what BN + clip folding writes for BNN-Clip blocks). Those leave int32, so
the AVX2 stage runs the exact formula in float64 lanes (|y*M| + |B + 2^(S-1)| < 2^53), or the
scalar int64 code beyond that bound. Both must equal the scalar reference bit for bit, with
outputs spread over the whole [-127, 127] range (not just saturated) and exact rounding ties.
"""
from __future__ import annotations

import numpy as np
import pytest

from onebit.runtime import capabilities, kernels

from _bconv_cases import packed

SIMD = [i for i in ("avx2", "avx512", "neon") if i in capabilities()["supported"]]
pytestmark = pytest.mark.skipif(not SIMD, reason="no SIMD ISA on this CPU/build")


def _wide_stage(rng, cout, k_bits, shift):
    # scale M / 2^S spread so that y * scale covers about [-200, 200] for |y| <= K
    scale = rng.uniform(-200.0, 200.0, size=cout) / max(1, k_bits)
    m = np.clip(np.round(scale * 2.0**shift), -(2**31 - 1), 2**31 - 1).astype(np.int64)
    b = rng.integers(-(2**31), 2**31 - 1, size=cout, dtype=np.int64)
    b[: cout // 4] = rng.integers(-(2**shift) * 40, 2**shift * 40, size=cout // 4)
    return {"multiplier": m.astype(np.int32), "bias": b.astype(np.int32), "shift": shift}


@pytest.mark.parametrize("isa", SIMD)
@pytest.mark.parametrize("cin,k,cout,shift", [(64, 3, 64, 25), (128, 3, 72, 26), (65, 1, 9, 31),
                                              (512, 3, 17, 20), (7, 5, 8, 1)])
def test_bconv_int8_wide_fixed_point_equals_scalar(isa, cin, k, cout, shift):
    rng = np.random.default_rng(cin * 100 + cout)
    x = packed(rng, (2, 9, 11, cin))
    w = packed(rng, (cout, k, k, cin))
    stage = _wide_stage(rng, cout, k * k * cin, shift)
    ref = kernels.bconv2d(x, w, in_channels=cin, padding="same", output="int8", isa="scalar", **stage)
    got = kernels.bconv2d(x, w, in_channels=cin, padding="same", output="int8", isa=isa, **stage)
    assert np.array_equal(ref, got)
    assert np.unique(ref).size > 20  # not just saturated outputs


@pytest.mark.parametrize("isa", SIMD)
def test_int8_rounding_ties_and_extremes(isa):
    """M = 2^(S-1), B = 0: y*M + 2^(S-1) = (y+1) * 2^(S-1), so every odd y+1 is an exact tie
    of the floor; plus int32-extreme multipliers and biases."""
    rng = np.random.default_rng(7)
    cin, cout = 64, 16
    x = packed(rng, (1, 8, 8, cin))
    w = packed(rng, (cout, 3, 3, cin))
    s = 26
    m = np.full(cout, 2 ** (s - 1), np.int64)
    m[8:] = [2**31 - 1, -(2**31), -(2**31) + 1, 2**30, -(2**30), 12345677, -98765431, 1]
    b = np.zeros(cout, np.int64)
    b[8:] = [2**31 - 1, -(2**31), 0, -(2**31), 2**31 - 1, -1, 1, 2**31 - 1]
    stage = {"multiplier": m.astype(np.int32), "bias": b.astype(np.int32), "shift": s}
    ref = kernels.bconv2d(x, w, in_channels=cin, padding="same", output="int8", isa="scalar", **stage)
    got = kernels.bconv2d(x, w, in_channels=cin, padding="same", output="int8", isa=isa, **stage)
    assert np.array_equal(ref, got)


@pytest.mark.parametrize("isa", SIMD)
def test_int8_beyond_float64_bound_uses_exact_integers(isa):
    """K * |M| >= 2^53 (K = 2^22 + 64 bits, M near 2^31): float64 is not exact there; the
    stage must fall back to the int64 formula and still equal the scalar reference."""
    rng = np.random.default_rng(3)
    fin, cout = 2**22 + 64, 8
    x = packed(rng, (2, fin))
    w = packed(rng, (cout, fin))
    stage = {"multiplier": np.array([2**31 - 1, -(2**31), 2**31 - 7, 2**30 + 3, -(2**30), 3, -5, 2**29],
                                    np.int32),
             "bias": rng.integers(-(2**31), 2**31 - 1, size=cout).astype(np.int32), "shift": 31}
    ref = kernels.bdense(x, w, in_features=fin, output="int8", isa="scalar", **stage)
    got = kernels.bdense(x, w, in_features=fin, output="int8", isa=isa, **stage)
    assert np.array_equal(ref, got)
