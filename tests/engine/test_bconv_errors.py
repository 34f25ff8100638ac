"""Bad input to bconv2d / bdense raises ValueError naming the problem (never a crash)."""
from __future__ import annotations

import numpy as np
import pytest

from onebit.runtime import kernels
from onebit.runtime.engine import engine

from _bconv_cases import packed

RNG = np.random.default_rng(0)
X = packed(RNG, (1, 5, 5, 70))          # W64 = 2
W = packed(RNG, (8, 3, 3, 70))
T = np.zeros(8, dtype=np.int32)
D = np.ones(8, dtype=np.int8)


def _call(**kw):
    args = dict(x_packed=X, w_packed=W, in_channels=70, padding=1)
    args.update(kw)
    return kernels.bconv2d(args.pop("x_packed"), args.pop("w_packed"), **args)


def _bad_padding_bits():
    x = X.copy()
    x[0, 0, 0, 1] |= np.uint64(1) << np.uint64(40)  # channel 104 of a 70-channel tensor
    return x


def _unsupported_isa() -> str:
    for name in ("avx512", "avx2", "neon"):
        if name not in engine.supported_isas():
            return name
    return "neon"


BAD = {
    "x-float64": (dict(x_packed=X.astype(np.float64)), "x_packed must have dtype uint64"),
    "x-int64": (dict(x_packed=X.view(np.int64)), "x_packed must have dtype uint64"),
    "w-uint32": (dict(w_packed=W.view(np.uint32)), "w_packed must have dtype uint64"),
    "x-non-contiguous": (dict(x_packed=np.zeros((1, 5, 10, 2), np.uint64)[:, :, ::2]), "C-contiguous"),
    "w-non-contiguous": (dict(w_packed=np.asfortranarray(W)), "C-contiguous"),
    "x-3d": (dict(x_packed=X[0]), "x_packed must be 4-D"),
    "w-2d": (dict(w_packed=np.ascontiguousarray(W[:, 0, 0])), "w_packed must be 4-D"),
    "channels-mismatch-x": (dict(in_channels=64), "x_packed has 2 words per pixel"),
    "channels-mismatch-w": (dict(w_packed=packed(RNG, (8, 3, 3, 64))), "w_packed has 1 words per tap"),
    "padding-bits": (dict(x_packed=_bad_padding_bits()), "nonzero padding bits"),
    "in-channels-zero": (dict(in_channels=0), "in_channels must be >= 1"),
    "stride-zero": (dict(stride=0), "stride must be >= 1"),
    "padding-negative": (dict(padding=-1), "padding must be >= 0"),
    "padding-word": (dict(padding="full"), "padding must be an int"),
    "padding-too-large": (dict(padding=3), "padding 3 must be smaller"),
    "kernel-larger-than-input": (dict(x_packed=packed(RNG, (1, 2, 2, 70)), padding=0), "larger than the padded"),
    "output-unknown": (dict(output="int16"), "output must be"),
    "bits-no-threshold": (dict(output="bits", direction=D), "needs threshold"),
    "bits-no-direction": (dict(output="bits", threshold=T), "needs direction"),
    "bits-direction-zero": (dict(output="bits", threshold=T, direction=np.zeros(8, np.int8)),
                            "direction must hold"),
    "bits-threshold-int64": (dict(output="bits", threshold=T.astype(np.int64), direction=D),
                             "threshold must have dtype int32"),
    "bits-threshold-length": (dict(output="bits", threshold=T[:5], direction=D), r"threshold must have shape \(8,\)"),
    "int8-no-shift": (dict(output="int8", multiplier=T, bias=T), "needs shift"),
    "int8-shift-range": (dict(output="int8", multiplier=T, bias=T, shift=32), "0 < shift < 32"),
    "int8-bias-float": (dict(output="int8", multiplier=T, bias=T.astype(np.float32), shift=3),
                        "bias must have dtype int32"),
    "float-no-scale": (dict(output="float", bias=np.zeros(8, np.float32)), "needs scale"),
    "float-scale-float64": (dict(output="float", scale=np.zeros(8), bias=np.zeros(8, np.float32)),
                            "scale must have dtype float32"),
    "int32-extra-param": (dict(threshold=T), "threshold is not used"),
    "isa-unknown": (dict(isa="sse9"), "unknown ISA 'sse9'"),
    "isa-unsupported": (dict(isa=_unsupported_isa()), "not supported"),
    "threads-zero": (dict(threads=0), "threads must be >= 1"),
    "out-wrong-shape": (dict(out=np.zeros((1, 5, 5, 7), np.int32)), r"out must have shape \(1, 5, 5, 8\)"),
    "out-wrong-dtype": (dict(out=np.zeros((1, 5, 5, 8), np.float32)), "out must have dtype int32"),
    "same-even-kernel": (dict(w_packed=packed(RNG, (8, 2, 2, 70)), padding="same"), "odd size"),
}


@pytest.mark.parametrize("kw, match", BAD.values(), ids=BAD.keys())
def test_bconv_bad_input_raises(kw, match):
    with pytest.raises(ValueError, match=match):
        _call(**kw)


def test_bdense_bad_input_raises():
    x, w = packed(RNG, (2, 100)), packed(RNG, (5, 100))
    with pytest.raises(ValueError, match="x_packed must be 2-D"):
        kernels.bdense(x[None], w, in_features=100)
    with pytest.raises(ValueError, match="in_features=64 needs 1"):
        kernels.bdense(x, w, in_features=64)
    with pytest.raises(ValueError, match="dtype uint64"):
        kernels.bdense(x.astype(np.float32), w, in_features=100)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.bdense(np.zeros((2, 4), np.uint64)[:, ::2], w, in_features=100)
    with pytest.raises(ValueError, match="needs multiplier"):
        kernels.bdense(x, w, in_features=100, output="int8", shift=3)


def test_bconv_readonly_input_accepted():
    x = X.copy()
    x.setflags(write=False)
    np.testing.assert_array_equal(_call(x_packed=x), _call())


def test_bconv_readonly_out_rejected():
    out = np.zeros((1, 5, 5, 8), np.int32)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        _call(out=out)
