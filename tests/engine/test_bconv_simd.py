"""Every SIMD bconv2d / bdense variant equals the scalar reference bit for bit (all four output
stages) on the boundary grid below, and results never depend on the thread count.

Grid: Cin {1,7,63,64,65,127,128,129,511,513} x H,W {1,2,3,7,8,9,17} x Cout {1,7,8,9,17,64}
x k {1,3,5} x stride {1,2} x padding {same, valid} x batch {1,3}. The full Cin x Cout grid runs
for k=3 / stride 1 / same; the rest of the cross product is sampled (fixed seed) so the run stays
short. Ids read like ``avx2-n1_7x9x65-17_k3_s2_same``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from onebit.runtime import kernels

from _bconv_cases import OUTPUTS, packed, stage_params

CINS = (1, 7, 63, 64, 65, 127, 128, 129, 511, 513)
SIZES = (1, 2, 3, 7, 8, 9, 17)
COUTS = (1, 7, 8, 9, 17, 64)
KERNELS = (1, 3, 5)
STRIDES = (1, 2)
PADDINGS = ("same", "valid")
BATCHES = (1, 3)
SAMPLE_SEED = 12345
SAMPLES = 120


def _valid(case) -> bool:
    n, h, w, cin, cout, k, s, p = case
    pad = (k - 1) // 2 if p == "same" else 0
    return h + 2 * pad >= k and w + 2 * pad >= k


def _grid() -> list[tuple]:
    full = [(1, 7, 9, cin, cout, 3, 1, "same") for cin in CINS for cout in COUTS]
    rest = [c for c in itertools.product(BATCHES, SIZES, SIZES, CINS, COUTS, KERNELS, STRIDES, PADDINGS)
            if _valid(c)]
    rng = np.random.default_rng(SAMPLE_SEED)
    picked = [rest[i] for i in rng.choice(len(rest), size=SAMPLES, replace=False)]
    return full + picked


GRID = _grid()


def _id(case) -> str:
    return "n{}_{}x{}x{}-{}_k{}_s{}_{}".format(*case)


def _compare(simd_isa, x, w, cin, stride, padding, cout, k_bits, seed):
    rng = np.random.default_rng(seed)
    for output in OUTPUTS:
        variants = [stage_params(rng, cout, k_bits, output)]
        if output == "int8":
            variants.append(stage_params(rng, cout, k_bits, output, int8_wide=True))
        for params in variants:
            ref = kernels.bconv2d(x, w, in_channels=cin, stride=stride, padding=padding, output=output,
                                  isa="scalar", threads=1, **params)
            got = kernels.bconv2d(x, w, in_channels=cin, stride=stride, padding=padding, output=output,
                                  isa=simd_isa, threads=2, **params)
            assert got.dtype == ref.dtype and got.shape == ref.shape
            np.testing.assert_array_equal(got, ref, err_msg=f"output={output}")


@pytest.mark.parametrize("case", GRID, ids=[_id(c) for c in GRID])
def test_bconv_simd_equals_scalar(simd_isa, case):
    n, h, w, cin, cout, k, stride, padding = case
    rng = np.random.default_rng([n, h, w, cin, cout, k, stride, len(padding)])  # fixed per case
    x, wt = packed(rng, (n, h, w, cin)), packed(rng, (cout, k, k, cin))
    _compare(simd_isa, x, wt, cin, stride, padding, cout, k * k * cin, seed=[cin, cout, k])


@pytest.mark.parametrize("n, cin, cout", [(1, 1, 1), (3, 63, 7), (2, 65, 64), (1, 513, 129), (5, 1024, 1000)],
                         ids=lambda v: str(v))
def test_bdense_simd_equals_scalar(simd_isa, n, cin, cout):
    rng = np.random.default_rng([n, cin, cout])
    x, wt = packed(rng, (n, cin)), packed(rng, (cout, cin))
    for output in OUTPUTS:
        params = stage_params(rng, cout, cin, output)
        ref = kernels.bdense(x, wt, in_features=cin, output=output, isa="scalar", threads=1, **params)
        got = kernels.bdense(x, wt, in_features=cin, output=output, isa=simd_isa, threads=2, **params)
        np.testing.assert_array_equal(got, ref, err_msg=f"output={output}")


@pytest.mark.parametrize("shape", [(1, 14, 14, 256, 256), (2, 7, 7, 512, 200), (1, 9, 5, 65, 70)],
                         ids=lambda s: "n{}_{}x{}x{}-{}".format(*s))
def test_bconv_threads_identical(isa, shape):
    n, h, w, cin, cout = shape
    rng = np.random.default_rng(list(shape))
    x, wt = packed(rng, (n, h, w, cin)), packed(rng, (cout, 3, 3, cin))
    for output in OUTPUTS:
        params = stage_params(rng, cout, 9 * cin, output)
        ref = kernels.bconv2d(x, wt, in_channels=cin, padding="same", output=output, isa=isa, threads=1, **params)
        for t in (2, 3):
            got = kernels.bconv2d(x, wt, in_channels=cin, padding="same", output=output, isa=isa, threads=t,
                                  **params)
            np.testing.assert_array_equal(got, ref, err_msg=f"output={output} threads={t}")


def test_bconv_out_reused(isa):
    rng = np.random.default_rng(3)
    x, wt = packed(rng, (1, 5, 5, 64)), packed(rng, (70, 3, 3, 64))
    out = np.full((1, 5, 5, 70), -1, dtype=np.int32)
    res = kernels.bconv2d(x, wt, in_channels=64, padding=1, isa=isa, out=out)
    assert res is out
    np.testing.assert_array_equal(out, kernels.bconv2d(x, wt, in_channels=64, padding=1, isa="scalar"))


def test_bconv_bits_padding_bits_zero(isa):
    # Cout = 70: the second output word holds 6 channels; its 58 padding bits must stay 0 even
    # when every channel's bit is 1 (threshold above any y, direction +1).
    rng = np.random.default_rng(4)
    x, wt = packed(rng, (1, 4, 4, 64)), packed(rng, (70, 3, 3, 64))
    out = kernels.bconv2d(x, wt, in_channels=64, padding=1, output="bits", isa=isa,
                          threshold=np.full(70, 10**6, dtype=np.int32), direction=np.ones(70, dtype=np.int8))
    assert (out[..., 0] == np.uint64(2**64 - 1)).all()
    assert (out[..., 1] == np.uint64(2**6 - 1)).all()
