"""Scalar bconv2d / bdense equal the NumPy float oracle (unpack -> conv on +-1 with true-zero
padding -> output stage) on random data; int16/int32 accumulator boundary at K = 32767/32768."""
from __future__ import annotations

import numpy as np
import pytest

from onebit import bits
from onebit.runtime import kernels, reference

from _bconv_cases import OUTPUTS, packed, stage_params

SEED = 5


CASES = [  # n, h, w, cin, cout, k, stride, padding
    (1, 7, 7, 64, 8, 3, 1, "same"),
    (2, 9, 8, 70, 9, 3, 2, 1),
    (1, 5, 6, 1, 3, 5, 1, 2),
    (3, 8, 3, 129, 17, 1, 1, "valid"),
    (1, 17, 9, 7, 5, 5, 2, "valid"),
    (1, 4, 4, 200, 65, 3, 1, "same"),
    (1, 2, 2, 63, 1, 3, 1, 1),
]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "n{}_{}x{}x{}-{}_k{}_s{}_p{}".format(*c))
def test_bconv_scalar_equals_oracle(case, output):
    n, h, w, cin, cout, k, stride, padding = case
    rng = np.random.default_rng(SEED)
    x, wt = packed(rng, (n, h, w, cin)), packed(rng, (cout, k, k, cin))
    params = stage_params(rng, cout, k * k * cin, output)
    got = kernels.bconv2d(x, wt, in_channels=cin, stride=stride, padding=padding, output=output,
                          isa="scalar", threads=1, **params)
    want = reference.bconv2d(x, wt, in_channels=cin, stride=stride, padding=padding, output=output, **params)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_bconv_oracle_matches_float_conv():
    # The oracle itself against an independent float formulation: explicit loops over taps.
    rng = np.random.default_rng(SEED)
    x, wt = packed(rng, (1, 4, 5, 10)), packed(rng, (3, 3, 3, 10))
    xs, ws = bits.unpack(x, 10).astype(np.float64), bits.unpack(wt, 10).astype(np.float64)
    y = reference.bconv2d_int(x, wt, 10, stride=1, padding=1)
    for oh in range(4):
        for ow in range(5):
            for co in range(3):
                acc = 0.0
                for i in range(3):
                    for j in range(3):
                        ih, iw = oh - 1 + i, ow - 1 + j
                        if 0 <= ih < 4 and 0 <= iw < 5:  # true zero outside
                            acc += float(xs[0, ih, iw] @ ws[co, i, j])
                assert y[0, oh, ow, co] == acc


@pytest.mark.parametrize("output", OUTPUTS)
def test_bdense_scalar_equals_oracle(output):
    rng = np.random.default_rng(SEED)
    for n, cin, cout in [(1, 1, 1), (3, 65, 10), (2, 513, 70), (4, 1024, 129)]:
        x, wt = packed(rng, (n, cin)), packed(rng, (cout, cin))
        params = stage_params(rng, cout, cin, output)
        got = kernels.bdense(x, wt, in_features=cin, output=output, isa="scalar", **params)
        want = reference.bdense(x, wt, in_features=cin, output=output, **params)
        np.testing.assert_array_equal(got, want)


def test_bconv_accumulator_bits_choice():
    assert kernels.accumulator_bits(1) == 16
    assert kernels.accumulator_bits(32767) == 16
    assert kernels.accumulator_bits(32768) == 32
    assert kernels.accumulator_bits(9 * 4096) == 32


@pytest.mark.parametrize("cin, k, expect_bits", [
    (32767, 1, 16),   # K = 32767: largest int16 layer, y = +-32767 exactly
    (32768, 1, 32),   # K = 32768: y = 32768 would wrap in int16
    (3640, 3, 16),    # K = 32760 through 9 taps
    (3641, 3, 32),    # K = 32769 through 9 taps
])
def test_bconv_accumulator_boundary_exact(isa, cin, k, expect_bits):
    assert kernels.accumulator_bits(k * k * cin) == expect_bits
    kk = k * k * cin
    w64 = bits.num_words(cin)
    ones = bits.pack(np.ones((1, k, k, cin), dtype=np.float32))      # all +1
    neg = bits.pack(-np.ones((1, k, k, cin), dtype=np.float32))      # all -1
    w = np.concatenate([ones, neg])                                   # Cout = 2
    x_pos = ones.reshape(1, k, k, w64).copy()
    x_neg = neg.reshape(1, k, k, w64).copy()
    y_pos = kernels.bconv2d(x_pos, w, in_channels=cin, padding="valid", isa=isa)
    y_neg = kernels.bconv2d(x_neg, w, in_channels=cin, padding="valid", isa=isa)
    np.testing.assert_array_equal(y_pos.reshape(-1), [kk, -kk])
    np.testing.assert_array_equal(y_neg.reshape(-1), [-kk, kk])
    # The bits stage sees the exact value too: y = K > K-1 (d=-1) and y = -K < -K+1 (d=+1).
    t = np.array([kk - 1, -kk + 1], dtype=np.int32)
    b = kernels.bconv2d(x_pos, w, in_channels=cin, padding="valid", output="bits", threshold=t,
                        direction=np.array([-1, 1], dtype=np.int8), isa=isa)
    assert int(b.reshape(-1)[0]) == 0b11
