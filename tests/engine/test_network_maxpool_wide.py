"""Max pooling on wide pixels: the AVX2 kernels process 4 vectors of channels per pass, then
single vectors, then scalar elements (bits: 16 / 4 / 1 words; int8: 128 / 32 / 1 channels;
float32: 32 / 8 / 1 channels). Every path equals the scalar reference and the NumPy oracle bit
for bit, including float signed zeros (vmaxps keeps the later tap on ties, as the reference
rule acc > t ? acc : t does), for stem geometries and any thread count."""
from __future__ import annotations

import numpy as np
import pytest

from onebit.runtime import netkernels as nk
from onebit.runtime import reference_net as ref
from onebit.runtime.engine import engine

GEOMS = [(3, 2, 1, 13, 11), (2, 2, 0, 8, 9), (3, 1, 1, 5, 4)]  # k, s, p, h, w


@pytest.mark.parametrize("words", [4, 5, 16, 21])
@pytest.mark.parametrize("k,s,p,h,w", GEOMS)
def test_network_maxpool_bits_wide(words, k, s, p, h, w):
    rng = np.random.default_rng(words * 7 + k)
    # mostly-set bits so the AND of a window is not trivially zero
    x = (rng.integers(0, 2**63, (2, h, w, words), dtype=np.uint64)
         | rng.integers(0, 2**63, (2, h, w, words), dtype=np.uint64)
         | rng.integers(0, 2**63, (2, h, w, words), dtype=np.uint64) << np.uint64(1))
    want = ref.maxpool2d_bits(x, k, s, p)
    for isa in engine.supported_isas():
        for threads in (1, 2, 3):
            got = nk.maxpool2d_bits(x, k, s, p, isa=isa, threads=threads)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} threads={threads}")


@pytest.mark.parametrize("c", [128, 160, 200])
@pytest.mark.parametrize("k,s,p,h,w", GEOMS)
def test_network_maxpool_int8_wide(c, k, s, p, h, w):
    rng = np.random.default_rng(c + k)
    x = rng.integers(-128, 128, (2, h, w, c), dtype=np.int8)
    want = ref.maxpool2d_int8(x, k, s, p)
    for isa in engine.supported_isas():
        for threads in (1, 2, 3):
            got = nk.maxpool2d_int8(x, k, s, p, isa=isa, threads=threads)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} threads={threads}")


@pytest.mark.parametrize("c", [32, 64, 72, 100])
@pytest.mark.parametrize("k,s,p,h,w", GEOMS)
def test_network_maxpool_float_wide(c, k, s, p, h, w):
    rng = np.random.default_rng(c + k)
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    # Negative values and zeros of both signs: most windows' maximum is a tie between +0.0
    # and -0.0, whose sign depends on the tap order (half the pixels keep positive values).
    neg = rng.random(x.shape) < 0.5
    x[neg] = -np.abs(x[neg])
    zeros = neg & (rng.random(x.shape) < 0.5)
    x[zeros] = np.where(rng.random(int(zeros.sum())) < 0.5, np.float32(0.0), np.float32(-0.0))
    x[:, ::2] = np.where(x[:, ::2] > 0, -x[:, ::2], x[:, ::2])  # even rows: no positive value
    want = ref.maxpool2d_float(x, k, s, p)
    np.testing.assert_array_equal(np.signbit(nk.maxpool2d_float(x, k, s, p, isa="scalar")),
                                  np.signbit(want))
    for isa in engine.supported_isas():
        for threads in (1, 2, 3):
            got = nk.maxpool2d_float(x, k, s, p, isa=isa, threads=threads)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} threads={threads}")
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=isa)
