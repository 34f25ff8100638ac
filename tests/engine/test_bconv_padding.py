"""Binary convolution padding: one-padding (padded taps +1, Larq's ``pad_values=1``) and uneven
padding (``padding`` before the input, ``padding_end`` after it: Keras "same" on even inputs).

The scalar kernel equals the NumPy oracle; every SIMD kernel (plain, masked, prepared, 3x3 and 1x1
paths) equals the scalar kernel bit for bit, all four output stages, on a boundary grid of
channels (word edges), sizes, kernels, strides and (before, after) pads. Ids read like
``avx2-n2_7x8x65-9_k3_s2_p0+1_one``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from onebit import bits
from onebit.runtime import kernels, reference

from _bconv_cases import OUTPUTS, packed, stage_params

CINS = (1, 63, 64, 65, 129)
SIZES = (1, 2, 3, 7, 8)
KERNELS = (2, 3, 5)
STRIDES = (1, 2)
VALUES = (0, 1)
SAMPLE_SEED = 2718
SAMPLES = 90


def _valid(case) -> bool:
    n, h, w, cin, cout, k, s, p0, p1, v = case
    return p0 < k and p1 < k and h + p0 + p1 >= k and w + p0 + p1 >= k


def _grid() -> list[tuple]:
    pads = [(0, 1), (1, 0), (1, 1), (2, 3), (0, 2), (2, 2)]
    full = [(1, 7, 8, cin, cout, 3, s, p0, p1, v) for cin in CINS for cout in (7, 9, 64)
            for s in STRIDES for (p0, p1) in ((1, 1), (0, 1)) for v in VALUES]
    rest = [(n, h, w, cin, cout, k, s, p0, p1, v)
            for n, h, w, cin, cout, k, s, (p0, p1), v in itertools.product(
                (1, 2), SIZES, SIZES, CINS, (1, 9, 17), KERNELS, STRIDES, pads, VALUES)]
    rest = [c for c in rest if _valid(c)]
    rng = np.random.default_rng(SAMPLE_SEED)
    return full + [rest[i] for i in rng.choice(len(rest), size=SAMPLES, replace=False)]


GRID = _grid()


def _id(c) -> str:
    return "n{}_{}x{}x{}-{}_k{}_s{}_p{}+{}_{}".format(*c[:9], "one" if c[9] else "zero")


def _operands(case):
    n, h, w, cin, cout, k, s, p0, p1, v = case
    rng = np.random.default_rng(list(case))
    return rng, packed(rng, (n, h, w, cin)), packed(rng, (cout, k, k, cin))


def _mask(rng, wt, cin):
    """A canonical random mask (about 30% pruned) and the weights with pruned bits cleared."""
    keep = rng.random(wt.shape[:-1] + (cin,)) > 0.3
    m = bits.pack_mask(keep)
    return m, wt & m


@pytest.mark.parametrize("case", GRID[:40], ids=[_id(c) for c in GRID[:40]])
def test_bconv_padding_scalar_equals_oracle(case):
    n, h, w, cin, cout, k, s, p0, p1, v = case
    rng, x, wt = _operands(case)
    m, wm = _mask(rng, wt, cin)
    geo = dict(in_channels=cin, stride=s, padding=p0, padding_end=p1, pad_value=v)
    np.testing.assert_array_equal(kernels.bconv2d(x, wt, isa="scalar", threads=1, **geo),
                                  reference.bconv2d(x, wt, **geo))
    np.testing.assert_array_equal(kernels.bconv2d(x, wm, weight_mask=m, isa="scalar", threads=2, **geo),
                                  reference.bconv2d(x, wm, weight_mask=m, **geo))


@pytest.mark.parametrize("case", GRID, ids=[_id(c) for c in GRID])
def test_bconv_padding_simd_equals_scalar(simd_isa, case):
    n, h, w, cin, cout, k, s, p0, p1, v = case
    rng, x, wt = _operands(case)
    m, wm = _mask(rng, wt, cin)
    geo = dict(in_channels=cin, stride=s, padding=p0, padding_end=p1, pad_value=v)
    prep = kernels.prepare_weights(wt, in_channels=cin, isa=simd_isa)
    prep_m = kernels.prepare_weights(wm, in_channels=cin, isa=simd_isa, weight_mask=m)
    for output in OUTPUTS:
        params = stage_params(rng, cout, k * k * cin, output)
        ref = kernels.bconv2d(x, wt, output=output, isa="scalar", threads=1, **geo, **params)
        ref_m = kernels.bconv2d(x, wm, weight_mask=m, output=output, isa="scalar", threads=1, **geo, **params)
        for got, want, what in (
                (kernels.bconv2d(x, wt, output=output, isa=simd_isa, threads=2, **geo, **params), ref, "plain"),
                (kernels.bconv2d(x, prep, output=output, isa=simd_isa, threads=1, **geo, **params), ref, "prepared"),
                (kernels.bconv2d(x, wm, weight_mask=m, output=output, isa=simd_isa, threads=2, **geo, **params),
                 ref_m, "masked"),
                (kernels.bconv2d(x, prep_m, output=output, isa=simd_isa, threads=1, **geo, **params),
                 ref_m, "masked prepared")):
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want, err_msg=f"{what} output={output}")


def test_one_padding_by_hand(isa):
    # all +1 input, all +1 weights: one-padding gives K at every pixel, true-zero padding T*Cin
    x = np.zeros((1, 3, 4, 2), np.uint64)  # 2 words: Cin = 100, bits 0 = +1
    wt = np.zeros((5, 3, 3, 2), np.uint64)
    one = kernels.bconv2d(x, wt, in_channels=100, padding=1, pad_value=1, isa=isa)
    assert (one == 900).all()
    zero = kernels.bconv2d(x, wt, in_channels=100, padding=1, isa=isa)
    assert zero[0, 0, 0, 0] == 400 and zero[0, 1, 1, 0] == 900 and zero[0, 1, 0, 0] == 600
    # uneven: nothing before, one row/column after; stride 2 on an even input (Keras "same")
    x = np.zeros((1, 4, 4, 2), np.uint64)
    uneven = kernels.bconv2d(x, wt, in_channels=100, stride=2, padding=0, padding_end=1, isa=isa)
    assert uneven.shape == (1, 2, 2, 5)
    assert uneven[0, 0, 0, 0] == 900 and uneven[0, 1, 1, 0] == 400 and uneven[0, 0, 1, 0] == 600


def test_padding_arguments_are_checked():
    rng = np.random.default_rng(1)
    x, wt = packed(rng, (1, 5, 5, 10)), packed(rng, (4, 3, 3, 10))
    for kw, msg in ((dict(pad_value=2), "pad_value must be 0 or 1"),
                    (dict(padding=1, padding_end=3), "smaller than the kernel"),
                    (dict(padding=3, padding_end=0), "smaller than the kernel"),
                    (dict(padding=0, padding_end=-1), "padding must be >= 0")):
        for isa in kernels.engine.supported_isas():
            with pytest.raises(ValueError, match=msg):
                kernels.bconv2d(x, wt, in_channels=10, isa=isa, **kw)
    with pytest.raises(ValueError, match="pad_value"):
        reference.bconv2d(x, wt, in_channels=10, pad_value=-1)
