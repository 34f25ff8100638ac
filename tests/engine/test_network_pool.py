"""Pooling kernels (onebit.runtime.netkernels) vs the NumPy oracles, SIMD vs scalar, threads.

Seeds are fixed per case (printed in the test id); integer and float results compared with
equality (the float kernels define their summation order).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from onebit import bits
from onebit.runtime import netkernels as nk
from onebit.runtime import reference_net as ref
from onebit.runtime.engine import engine

CHANNELS = (1, 7, 63, 64, 65, 127, 129)
SIZES = (1, 2, 3, 7, 9, 17)


@pytest.fixture
def simd(simd_isa):
    """Every SIMD ISA (conftest's simd_isa), skipped where the CPU lacks it."""
    return simd_isa


def _cases():
    """Boundary grid: every channel count x H x W, with (k, s, p) cycling through odd strides
    and paddings (only combinations PyTorch accepts: p <= k // 2, window fits)."""
    geoms = itertools.cycle([(2, 2, 0), (3, 1, 1), (3, 2, 1), (3, 3, 0), (1, 1, 0), (2, 1, 1),
                             (5, 3, 2), (3, 2, 0), (4, 3, 2), ((2, 3), (1, 2), (1, 0))])
    out = []
    for i, (c, h, w) in enumerate(itertools.product(CHANNELS, SIZES, SIZES)):
        if i % 4:  # a quarter of the cross product keeps the run short; all values still appear
            continue
        for _ in range(10):
            k, s, p = next(geoms)
            kh, kw = (k, k) if isinstance(k, int) else k
            ph, pw = (p, p) if isinstance(p, int) else p
            if h + 2 * ph >= kh and w + 2 * pw >= kw:
                break
        else:
            k, s, p = 1, 1, 0
        out.append(pytest.param(c, h, w, k, s, p, id=f"c{c}-h{h}-w{w}-k{k}-s{s}-p{p}"))
    return out


CASES = _cases()


def _int8(rng, n, h, w, c):
    return rng.integers(-127, 128, (n, h, w, c), dtype=np.int8)


@pytest.mark.parametrize("c,h,w,k,s,p", CASES)
def test_network_maxpool_bits_equals_oracle(c, h, w, k, s, p):
    rng = np.random.default_rng(c * 1000 + h * 31 + w)
    x = bits.pack(rng.standard_normal((2, h, w, c)).astype(np.float32))
    want = ref.maxpool2d_bits(x, k, s, p)
    got = nk.maxpool2d_bits(x, k, s, p, isa="scalar")
    np.testing.assert_array_equal(got, want)
    # channel padding bits stay 0
    np.testing.assert_array_equal(bits.pack(bits.unpack(got, c)), got)


@pytest.mark.parametrize("c,h,w,k,s,p", CASES[::3])
def test_network_maxpool_bits_simd_equals_scalar(simd, c, h, w, k, s, p):
    rng = np.random.default_rng(c * 1000 + h * 31 + w)
    x = rng.integers(0, 2**64, (2, h, w, bits.num_words(c)), dtype=np.uint64)
    np.testing.assert_array_equal(nk.maxpool2d_bits(x, k, s, p, isa=simd),
                                  nk.maxpool2d_bits(x, k, s, p, isa="scalar"))


@pytest.mark.parametrize("c,h,w,k,s,p", CASES)
def test_network_maxpool_int8_equals_oracle_and_simd(c, h, w, k, s, p):
    rng = np.random.default_rng(c * 7 + h * 3 + w)
    x = rng.integers(-128, 128, (2, h, w, c), dtype=np.int8)
    want = ref.maxpool2d_int8(x, k, s, p)
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.maxpool2d_int8(x, k, s, p, isa=isa), want, err_msg=isa)


@pytest.mark.parametrize("c,h,w,k,s,p", CASES[1::2])
def test_network_maxpool_float_equals_oracle_and_simd(c, h, w, k, s, p):
    rng = np.random.default_rng(c * 17 + h * 3 + w)
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    x[0, 0, 0, :] = -0.0  # signed zeros take the same path on every ISA
    want = ref.maxpool2d_float(x, k, s, p)
    for isa in engine.supported_isas():
        got = nk.maxpool2d_float(x, k, s, p, isa=isa)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=isa)


@pytest.mark.parametrize("cip", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("c,h,w,k,s,p", CASES)
def test_network_avgpool_int8_equals_oracle_and_simd(c, h, w, k, s, p, cip):
    rng = np.random.default_rng(c * 11 + h * 5 + w)
    x = _int8(rng, 2, h, w, c)
    want = ref.avgpool2d_int8(x, k, s, p, count_include_pad=cip)
    for isa in engine.supported_isas():
        got = nk.avgpool2d_int8(x, k, s, p, count_include_pad=cip, isa=isa)
        np.testing.assert_array_equal(got, want, err_msg=isa)


@pytest.mark.parametrize("cip", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("c,h,w,k,s,p", CASES[::2])
def test_network_avgpool_float_equals_oracle_and_simd(c, h, w, k, s, p, cip):
    rng = np.random.default_rng(c * 13 + h * 5 + w)
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    want = ref.avgpool2d_float(x, k, s, p, count_include_pad=cip)
    for isa in engine.supported_isas():
        got = nk.avgpool2d_float(x, k, s, p, count_include_pad=cip, isa=isa)
        np.testing.assert_array_equal(got, want, err_msg=isa)


def test_network_avgpool_int8_rounds_half_up():
    # sums over d = 2: -3 -> -1.5 -> -1 ; 3 -> 1.5 -> 2 ; -1 -> -0.5 -> 0 ; 1 -> 0.5 -> 1
    x = np.array([-1, -2, 1, 2, 0, -1, 0, 1], np.int8).reshape(1, 1, 8, 1)
    for isa in engine.supported_isas():
        got = nk.avgpool2d_int8(x, (1, 2), isa=isa)
        np.testing.assert_array_equal(got.ravel(), [-1, 2, 0, 1], err_msg=isa)


def test_network_avgpool_int8_clamps_to_symmetric_grid():
    x = np.full((1, 2, 2, 33), -128, np.int8)
    for isa in engine.supported_isas():
        assert (nk.avgpool2d_int8(x, 2, isa=isa) == -127).all()
        assert (nk.global_avgpool_int8(x, isa=isa) == -127).all()


@pytest.mark.parametrize("c", CHANNELS + (512,))
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (7, 7), (9, 17)])
def test_network_global_avgpool_equals_oracle_and_simd(c, hw):
    rng = np.random.default_rng(c + 100 * hw[0] + hw[1])
    x8 = _int8(rng, 3, hw[0], hw[1], c)
    xf = rng.standard_normal((3, hw[0], hw[1], c)).astype(np.float32)
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.global_avgpool_int8(x8, isa=isa),
                                      ref.global_avgpool_int8(x8), err_msg=isa)
        np.testing.assert_array_equal(nk.global_avgpool_int8_float(x8, 0.0123, isa=isa),
                                      ref.global_avgpool_int8_float(x8, 0.0123), err_msg=isa)
        np.testing.assert_array_equal(nk.global_avgpool_float(xf, isa=isa),
                                      ref.global_avgpool_float(xf), err_msg=isa)


def test_network_pool_threads_identical():
    rng = np.random.default_rng(5)
    x8 = _int8(rng, 3, 17, 17, 65)
    xb = rng.integers(0, 2**64, (3, 17, 17, 3), dtype=np.uint64)
    xf = rng.standard_normal((3, 17, 17, 65)).astype(np.float32)
    for isa in engine.supported_isas():
        for fn, x in ((nk.maxpool2d_bits, xb), (nk.maxpool2d_int8, x8), (nk.avgpool2d_int8, x8),
                      (nk.avgpool2d_float, xf), (nk.maxpool2d_float, xf)):
            one = fn(x, 3, 2, 1, isa=isa, threads=1)
            for t in (2, 3):
                np.testing.assert_array_equal(fn(x, 3, 2, 1, isa=isa, threads=t), one)
        for fn in (nk.global_avgpool_int8, nk.global_avgpool_int8_float):
            np.testing.assert_array_equal(fn(x8, isa=isa, threads=1), fn(x8, isa=isa, threads=2))


def test_network_pool_oracle_matches_torch():
    """The oracles follow PyTorch's pooling semantics (max: padded taps ignored; avg: both
    count_include_pad settings), checked on the real values."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 7, 5)).astype(np.float32)
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    for k, s, p in ((3, 2, 1), (2, 2, 0), (3, 1, 1), (5, 3, 2)):
        q = np.clip(np.round(x * 40), -127, 127).astype(np.float32)
        want = F.max_pool2d(torch.from_numpy(q).permute(0, 3, 1, 2), k, s, p)
        np.testing.assert_array_equal(ref.maxpool2d_int8(q.astype(np.int8), k, s, p),
                                      want.permute(0, 2, 3, 1).numpy().astype(np.int8))
        np.testing.assert_array_equal(ref.maxpool2d_float(x, k, s, p),
                                      F.max_pool2d(t, k, s, p).permute(0, 2, 3, 1).numpy())
        for cip in (True, False):
            want = F.avg_pool2d(t, k, s, p, count_include_pad=cip).permute(0, 2, 3, 1).numpy()
            np.testing.assert_allclose(ref.avgpool2d_float(x, k, s, p, cip), want, rtol=1e-5,
                                       atol=1e-6)
    # max pooling commutes with sign, so pooling bits == bits of pooled values
    xb = bits.pack(x)
    pooled = F.max_pool2d(t, 3, 2, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(nk.maxpool2d_bits(xb, 3, 2, 1), bits.pack(pooled))
