"""bitpack kernels: equal to the reference onebit.bits.pack for every ISA, bit order, padding."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from onebit import bits
from onebit.runtime import kernels

SEED = 20261123


@pytest.mark.parametrize("channels", [1, 7, 8, 63, 64, 65, 127, 128, 129, 200, 511, 513])
@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_bitpack_equals_reference(isa, channels, dtype):
    rng = np.random.default_rng(SEED + channels)
    if dtype == "float32":
        x = rng.standard_normal((2, 3, 5, channels)).astype(np.float32)
        x[0, 0, 0, : min(4, channels)] = [0.0, -0.0, np.nan, -np.inf][: min(4, channels)]
    else:
        x = rng.integers(-128, 128, size=(2, 3, 5, channels)).astype(np.int8)
        x[0, 0, 0, 0] = 0
    got = kernels.bitpack(x, isa=isa, threads=2)
    assert got.dtype == np.uint64 and got.shape == x.shape[:-1] + (bits.num_words(channels),)
    np.testing.assert_array_equal(got, bits.pack(x))


def test_bitpack_one_hot_bit_order(isa):
    # Channel c negative, all others positive -> exactly bit c % 64 of word c // 64.
    c_total = 130
    x = np.eye(c_total, dtype=np.float32) * -2.0 + 1.0
    x = np.ascontiguousarray(x)
    got = kernels.bitpack(x, isa=isa)
    for c in range(c_total):
        expect = np.zeros(3, dtype=np.uint64)
        expect[c // 64] = np.uint64(1) << np.uint64(c % 64)
        np.testing.assert_array_equal(got[c], expect, err_msg=f"channel {c}")


def test_bitpack_padding_bits_zero(isa):
    x = -np.ones((4, 65), dtype=np.float32)  # every real channel is -1 (bit 1)
    got = kernels.bitpack(x, isa=isa)
    assert (got[:, 0] == np.uint64(2**64 - 1)).all()
    assert (got[:, 1] == np.uint64(1)).all()  # channel 64 set, padding bits 1..63 zero
    x8 = -np.ones((4, 65), dtype=np.int8)
    np.testing.assert_array_equal(kernels.bitpack(x8, isa=isa), got)


def test_bitpack_threads_identical(isa):
    x = np.random.default_rng(SEED).standard_normal((3, 17, 9, 100)).astype(np.float32)
    ref = kernels.bitpack(x, isa=isa, threads=1)
    for t in (2, 3):
        np.testing.assert_array_equal(kernels.bitpack(x, isa=isa, threads=t), ref)


def test_bitpack_out_reused(isa):
    x = np.random.default_rng(SEED).standard_normal((2, 70)).astype(np.float32)
    out = np.full((2, 2), 7, dtype=np.uint64)
    res = kernels.bitpack(x, isa=isa, out=out)
    assert res is out
    np.testing.assert_array_equal(out, bits.pack(x))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=140),
                  elements=st.floats(-4, 4, width=32, allow_nan=False)))
def test_bitpack_unpack_roundtrip_is_sign(x):
    for isa in kernels.engine.supported_isas():
        packed = kernels.bitpack(x, isa=isa)
        np.testing.assert_array_equal(bits.unpack(packed, x.shape[-1]), bits.sign(x))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 8), dtype=np.float64), "dtype float32 or int8"),
    (np.zeros((2, 8), dtype=np.int32), "dtype float32 or int8"),
    (np.zeros((4, 8), dtype=np.float32)[:, ::2], "C-contiguous"),
    (np.zeros((3, 0), dtype=np.float32), "at least one channel"),
], ids=["float64", "int32", "non-contiguous", "zero-channels"])
def test_bitpack_bad_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        kernels.bitpack(bad)
