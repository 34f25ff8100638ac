"""Residual add (int8 / float32) and float32 dense: oracle equality, SIMD == scalar, threads."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onebit.runtime import netkernels as nk
from onebit.runtime import reference_net as ref
from onebit.runtime.engine import engine

# Lengths around the 32-element vector step and the 4096-element thread block.
LENGTHS = (1, 31, 32, 33, 127, 4095, 4097, 10007)


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("params", [
    (2**20, 2**20, 20),                  # equal scales: saturating sum (int32 path)
    (1_300_000, 700_001, 21),            # different scales (int32 path)
    (2**31 - 1, -(2**31), 31),           # extreme multipliers: exact int64 path
    (123_456_789, 987_654_321, 30),      # int64 path, rounding at every element
    (3, -5, 1),
    (2**23, 2**23, 23),                  # the zoo's equal scales: reduced to 2, 2, 1 (int16 path)
    (3 * 2**10, -5 * 2**12, 14),         # common power of two removed: 3, -20, 4 (int16 path)
    (-(2**31), 2**30, 31),               # reduced to -2, 1, 1
], ids=["equal", "rescale", "extreme", "int64", "tiny-shift", "zoo-equal", "common-pow2",
        "int-min"])
def test_network_add_int8_equals_oracle_and_simd(n, params):
    ma, mb, shift = params
    rng = np.random.default_rng(n)
    a = rng.integers(-128, 128, n, dtype=np.int8)
    b = rng.integers(-128, 128, n, dtype=np.int8)
    m = min(n, 4)  # the extremes the path bounds are computed for
    a[:m], b[:m] = (-128, 127, -128, 127)[:m], (-128, 127, 127, -128)[:m]
    want = ref.add_int8(a, b, ma, mb, shift)
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.add_int8(a, b, ma, mb, shift, isa=isa), want, err_msg=isa)


def test_network_add_int8_equal_scales_is_saturating_sum():
    a = np.array([100, -100, 5, -128, 127, -3], np.int8).reshape(1, 2, 3, 1)
    b = np.array([100, -100, -7, -128, 0, 2], np.int8).reshape(1, 2, 3, 1)
    for isa in engine.supported_isas():
        got = nk.add_int8(a, b, 2**16, 2**16, 16, isa=isa)
        np.testing.assert_array_equal(got.ravel(), [127, -127, -2, -127, 127, -1])


def test_network_add_int8_params_rescale():
    ma, mb, shift = nk.add_int8_params(0.02, 0.05, 0.04)
    assert 128 * (ma + mb) + 2 ** (shift - 1) < 2**31
    a = np.arange(-127, 128, dtype=np.int8)
    b = a[::-1].copy()
    got = nk.add_int8(a, b, ma, mb, shift).astype(np.float64) * 0.04
    real = np.clip(a * 0.02 + b * 0.05, -127 * 0.04, 127 * 0.04)
    assert np.abs(got - real).max() <= 0.02 + 1e-9  # within half a step of the output grid


@pytest.mark.parametrize("n", LENGTHS)
def test_network_add_float_equals_numpy(n):
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal((2, n)).astype(np.float32)
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.add_float(a, b, isa=isa), a + b)


def test_network_add_threads_identical():
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (2, 33, 31, 65), dtype=np.int8)
    b = rng.integers(-128, 128, (2, 33, 31, 65), dtype=np.int8)
    for isa in engine.supported_isas():
        for params in ((2**20, 3 * 2**19, 20), (2**31 - 1, 5, 31)):
            one = nk.add_int8(a, b, *params, isa=isa, threads=1)
            np.testing.assert_array_equal(nk.add_int8(a, b, *params, isa=isa, threads=2), one)


@pytest.mark.parametrize("fin", [1, 7, 8, 9, 63, 64, 65, 129, 1024])
@pytest.mark.parametrize("fout", [1, 3, 4, 5, 17])
def test_network_dense_float_equals_oracle_and_simd(fin, fout):
    rng = np.random.default_rng(fin * 100 + fout)
    x = rng.standard_normal((3, fin)).astype(np.float32)
    w = rng.standard_normal((fout, fin)).astype(np.float32)
    bias = rng.standard_normal(fout).astype(np.float32)
    want = ref.dense_float(x, w, bias)
    # the fixed order is a float32 rounding of the exact dot product
    exact = x.astype(np.float64) @ w.T.astype(np.float64) + bias
    np.testing.assert_allclose(want, exact, rtol=1e-4, atol=1e-4 * np.sqrt(fin))
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.dense_float(x, w, bias, isa=isa), want, err_msg=isa)
        np.testing.assert_array_equal(nk.dense_float(x, w, isa=isa), ref.dense_float(x, w),
                                      err_msg=isa)


def test_network_dense_float_matches_torch_linear():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1024)).astype(np.float32)
    w = rng.standard_normal((10, 1024)).astype(np.float32)
    bias = rng.standard_normal(10).astype(np.float32)
    want = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                      torch.from_numpy(bias)).numpy()
    np.testing.assert_allclose(nk.dense_float(x, w, bias), want, rtol=1e-5, atol=1e-4)


def test_network_dense_float_threads_identical():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 515)).astype(np.float32)
    w = rng.standard_normal((37, 515)).astype(np.float32)
    for isa in engine.supported_isas():
        one = nk.dense_float(x, w, isa=isa, threads=1)
        for t in (2, 3):
            np.testing.assert_array_equal(nk.dense_float(x, w, isa=isa, threads=t), one)


@settings(max_examples=60, deadline=None)
@given(ma=st.integers(-(2**31), 2**31 - 1), mb=st.integers(-(2**31), 2**31 - 1),
       shift=st.integers(1, 31), seed=st.integers(0, 2**32 - 1))
def test_network_add_int8_any_params_equal_oracle(ma, mb, shift, seed):
    """Any int32 multipliers and shift, both the int32 fast path and the int64 path."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, 77, dtype=np.int8)
    b = rng.integers(-128, 128, 77, dtype=np.int8)
    a[:2], b[:2] = (-128, 127), (-128, 127)  # the extremes the int32 bound is computed for
    want = ref.add_int8(a, b, ma, mb, shift)
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.add_int8(a, b, ma, mb, shift, isa=isa), want, err_msg=isa)


@pytest.mark.parametrize("excess", [0, 1], ids=["int32-path", "int64-path"])
def test_network_add_int8_at_the_int32_path_bound(excess):
    """128*(|ma| + |mb|) + 2^(shift-1) == 2^31 - 1 is the last case of the 32-bit path."""
    shift = 20
    total = (2**31 - 1 - 2 ** (shift - 1)) // 128
    ma = total // 2
    mb = total - ma + excess
    a = np.array([-128, 127, -128, 127, 5] * 8, np.int8)
    b = np.array([-128, 127, 127, -128, -5] * 8, np.int8)
    want = ref.add_int8(a, b, ma, mb, shift)
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.add_int8(a, b, ma, mb, shift, isa=isa), want, err_msg=isa)


@pytest.mark.parametrize("mb", [127, 128], ids=["int16-path", "int32-path"])
def test_network_add_int8_at_the_int16_path_bound(mb):
    """128*(|ma| + |mb|) + 2^(shift-1) <= 2^15 - 1 is the int16 path: 127, 127, 8 gives 32640;
    127, 128, 8 (nothing to reduce: 127 is odd) gives 32768, the int32 path."""
    a = np.array([-128, 127, -128, 127, 5, -1] * 9, np.int8)
    b = np.array([-128, 127, 127, -128, -5, 0] * 9, np.int8)
    want = ref.add_int8(a, b, 127, mb, 8)
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.add_int8(a, b, 127, mb, 8, isa=isa), want, err_msg=isa)
        np.testing.assert_array_equal(nk.add_int8(a, b, -127, -mb, 8, isa=isa),
                                      ref.add_int8(a, b, -127, -mb, 8), err_msg=isa)
