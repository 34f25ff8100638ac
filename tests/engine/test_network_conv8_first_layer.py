"""int8 convolution on few input channels (first layers: Cin 1-4): every SIMD ISA equals the
scalar reference bit for bit, and the scalar reference equals the NumPy oracle.

The AVX2 kernel cuts each output row into register tiles of up to 6 pixels x 16 output
channels and runs the output stage on the tile's registers, so the grid covers: row widths
that give every tile size (ow 1..13), Cout below / at / past a 16-channel block, kernels 3/5/7
with odd kw*cin (the padded pair slot), strides 1-2, paddings 0-3, uint8 and int8 input with
per-channel zero points, every output stage, and for int8 both the 32-bit fast path (small
multipliers) and the exact int64 path (multipliers near 2^31). Threads 1/2/3 give identical
results.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from onebit import bits
from onebit.runtime import netkernels as nk
from onebit.runtime import reference_net as ref
from onebit.runtime.engine import engine

OUTPUTS = ("int32", "bits", "int8", "float")


def _stage(rng, cout, output, big=False):
    if output == "int32":
        return {}
    if output == "bits":
        return {"threshold": rng.integers(-3000, 3000, cout).astype(np.int32),
                "direction": rng.choice(np.array([-1, 1], np.int8), cout)}
    if output == "int8":
        if big:  # y*M leaves int32: only the int64 path is exact
            m = rng.integers(2**30, 2**31 - 1, cout) * rng.choice([-1, 1], cout)
            return {"multiplier": m.astype(np.int32),
                    "bias": rng.integers(-2**31, 2**31 - 1, cout).astype(np.int32), "shift": 31}
        shift = int(rng.integers(10, 20))
        m = rng.integers(1, 2**(shift - 8), cout) * rng.choice([-1, 1], cout)
        return {"multiplier": m.astype(np.int32),
                "bias": rng.integers(-2**(shift + 4), 2**(shift + 4), cout).astype(np.int32),
                "shift": shift}
    return {"scale": (rng.standard_normal(cout) * 0.01).astype(np.float32),
            "bias": rng.standard_normal(cout).astype(np.float32)}


def _data(seed, n, h, w, cin, cout, k, signed):
    rng = np.random.default_rng(seed)
    if signed:
        x = rng.integers(-128, 128, (n, h, w, cin), dtype=np.int8)
        zp = rng.integers(-128, 128, cin).astype(np.int32)
    else:
        x = rng.integers(0, 256, (n, h, w, cin), dtype=np.uint8)
        zp = rng.integers(0, 256, cin).astype(np.int32)
    wt = rng.integers(-128, 128, (cout, k, k, cin), dtype=np.int8)
    return rng, x, wt, zp


def _cases():
    geoms = [(k, s, p) for k in (3, 5, 7) for s in (1, 2) for p in range(4)]
    couts = itertools.cycle((1, 15, 16, 17, 33, 64))
    widths = itertools.cycle(range(1, 14))
    outs = itertools.cycle(OUTPUTS)
    cases = []
    for cin in (1, 3, 4):
        for k, s, p in geoms:
            ow = next(widths)
            w = max(1, (ow - 1) * s + k - 2 * p)  # input width giving ~ow outputs
            h = max(1, 2 * s + k - 2 * p + 1)      # a few output rows, odd sizes
            cases.append(pytest.param(cin, next(couts), h, w, k, s, p, next(outs),
                                      id=f"ci{cin}-k{k}-s{s}-p{p}-{h}x{w}"))
    return cases


@pytest.mark.parametrize("cin,cout,h,w,k,s,p,output", _cases())
def test_network_conv8_first_layer_simd_equals_scalar_equals_oracle(cin, cout, h, w, k, s, p,
                                                                   output):
    for signed in (False, True):
        seed = cin * 10007 + cout * 101 + k * 13 + s * 7 + p + signed
        rng, x, wt, zp = _data(seed, 2, h, w, cin, cout, k, signed)
        stage = _stage(rng, cout, output)
        want = nk.conv2d_int8(x, wt, stride=s, padding=p, zero_point=zp, output=output, **stage,
                              isa="scalar")
        np.testing.assert_array_equal(
            want, ref.conv2d_int8(x, wt, s, p, zp, output, **stage), err_msg="scalar vs oracle")
        if output == "bits":  # output channel padding bits are zero
            np.testing.assert_array_equal(bits.pack(bits.unpack(want, cout)), want)
        for isa in engine.supported_isas():
            for threads in (1, 2, 3):
                got = nk.conv2d_int8(x, wt, stride=s, padding=p, zero_point=zp, output=output,
                                     **stage, isa=isa, threads=threads)
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} threads={threads}")


@pytest.mark.parametrize("ow", range(1, 14))
@pytest.mark.parametrize("big", [False, True], ids=["int32-path", "int64-path"])
def test_network_conv8_first_layer_int8_stage_paths(ow, big):
    """int8 output on every row tiling: small multipliers (32-bit requantization, proven
    in range per tile) and multipliers near 2^31 (exact int64 emulation) both equal scalar."""
    rng, x, wt, zp = _data(ow, 1, 9, ow + 2, 3, 33, 3, False)
    stage = _stage(rng, 33, "int8", big=big)
    want = nk.conv2d_int8(x, wt, stride=1, padding=0, zero_point=zp, output="int8", **stage,
                          isa="scalar")
    for isa in engine.supported_isas():
        got = nk.conv2d_int8(x, wt, stride=1, padding=0, zero_point=zp, output="int8", **stage,
                             isa=isa)
        np.testing.assert_array_equal(got, want, err_msg=isa)


def test_network_conv8_int8_fast_path_boundary():
    """The 32-bit int8 stage is taken only while |y| * max|M| + max|B| + 2^(S-1) <= 2^31 - 1:
    accumulators exactly at and one past that bound give the int64 formula's result."""
    shift = 20
    rnd = 2**(shift - 1)
    bias = 2**24
    k = 1000  # y = +-(number of taps), one pixel per row (dense layer)
    y_at = k
    m = (2**31 - 1 - bias - rnd) // y_at  # y_at * m + bias + rnd <= 2^31 - 1
    x = np.full((4, k), 1, np.int8)
    x[1] = -1
    x[2, -1] = 0  # y = k - 1
    x[3, 0] = 2  # y = k + 1: one past the bound for m
    wt = np.ones((16, k), np.int8)
    wt[8:] = -1
    for mult in (m, m + 1, -m, -(m + 1)):
        stage = {"multiplier": np.full(16, mult, np.int32), "bias": np.full(16, bias, np.int32),
                 "shift": shift}
        want = ref.dense_int8(x, wt, 0, "int8", **stage)
        for isa in engine.supported_isas():
            got = nk.dense_int8(x, wt, output="int8", **stage, isa=isa)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} m={mult}")


def test_network_conv8_stem_shape_simd_equals_scalar():
    """The ImageNet stem (7x7 stride 2 pad 3, 3 -> 64, float output) on a 45x45 crop."""
    rng, x, wt, _ = _data(5, 1, 45, 45, 3, 64, 7, False)
    zp = np.array([124, 116, 104], np.int32)
    stage = _stage(rng, 64, "float")
    want = nk.conv2d_int8(x, wt, stride=2, padding=3, zero_point=zp, output="float", **stage,
                          isa="scalar")
    for isa in engine.supported_isas():
        got = nk.conv2d_int8(x, wt, stride=2, padding=3, zero_point=zp, output="float", **stage,
                             isa=isa, threads=2)
        np.testing.assert_array_equal(got, want, err_msg=isa)
