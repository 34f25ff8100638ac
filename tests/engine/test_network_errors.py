"""Bad input to the network kernels raises ValueError with a clear message, never a crash.
Checked both through onebit.runtime.netkernels and directly on onebit._engine (whose bindings
must validate on their own)."""
from __future__ import annotations

import numpy as np
import pytest

from onebit.runtime import netkernels as nk
from onebit.runtime.engine import engine

I8 = np.zeros((1, 4, 4, 8), np.int8)
U8 = np.zeros((1, 4, 4, 3), np.uint8)
W8 = np.zeros((5, 3, 3, 3), np.int8)
# An ISA this CPU or build lacks (neon on x86, avx2 on ARM).
MISSING_ISA = next(i for i in ("neon", "avx2", "avx512") if i not in engine.supported_isas())


@pytest.mark.parametrize("call,match", [
    (lambda: nk.maxpool2d_int8(I8.astype(np.int16), 2), "dtype int8"),
    (lambda: nk.maxpool2d_int8(I8[:, :, ::2], 2), "C-contiguous"),
    (lambda: nk.maxpool2d_int8(I8[0], 2), "4 dimensions"),
    (lambda: nk.maxpool2d_int8(I8, 3, padding=2), "half the kernel"),
    (lambda: nk.maxpool2d_int8(I8, 5), "does not fit"),
    (lambda: nk.maxpool2d_int8(I8, 0), ">= 1"),
    (lambda: nk.avgpool2d_int8(I8[:, :1, :1].copy(), 4097, padding=2048), r"2\^23 taps"),
    (lambda: nk.maxpool2d_int8(I8.tolist(), 2), "numpy.ndarray"),
    (lambda: nk.maxpool2d_bits(I8, 2), "dtype uint64"),
    (lambda: nk.avgpool2d_int8(I8, 2, out=np.empty((1, 2, 2, 7), np.int8)), "shape"),
    (lambda: nk.avgpool2d_float(I8, 2), "dtype float32"),
    (lambda: nk.maxpool2d_int8(I8, 1, out=I8), "overlap"),
    (lambda: nk.maxpool2d_int8(I8, 1, out=np.broadcast_to(np.int8(0), I8.shape)), "writeable"),
    (lambda: nk.dense_float(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32),
                            out=np.zeros((2, 4), np.float64)), "float32 of shape"),
    (lambda: nk.global_avgpool_int8(I8.astype(np.float32)), "dtype int8"),
    (lambda: nk.maxpool2d_int8(I8, 2, isa="sse9"), "unknown ISA"),
    (lambda: nk.maxpool2d_int8(I8, 2, isa=MISSING_ISA), "not supported"),
    (lambda: nk.maxpool2d_int8(I8, 2, threads=0), "threads"),
    (lambda: nk.add_int8(I8, I8[:, :2], 2, 2, 1), "shape"),
    (lambda: nk.add_int8(I8, I8, 2, 2, 0), "shift"),
    (lambda: nk.add_int8(I8, I8, 2, 2, 32), "shift"),
    (lambda: nk.add_int8(I8, I8, 2**31, 2, 3), "int32"),
    (lambda: nk.add_float(I8, I8), "dtype float32"),
    (lambda: nk.conv2d_int8(U8.astype(np.int32), W8), "uint8 or int8"),
    (lambda: nk.conv2d_int8(U8, W8.astype(np.uint8)), "dtype int8"),
    (lambda: nk.conv2d_int8(U8, W8[:, :, :, :2].copy()), "input channels"),
    (lambda: nk.conv2d_int8(U8, np.zeros((5, 5, 5, 3), np.int8)), "does not fit"),
    (lambda: nk.conv2d_int8(U8, W8, zero_point=300), r"\[-255, 255\]"),
    (lambda: nk.conv2d_int8(U8, W8, zero_point=[1, 2]), "zero_point must have 3"),
    (lambda: nk.conv2d_int8(U8, W8, zero_point=1.5), "integers"),
    (lambda: nk.conv2d_int8(U8, W8, output="bits"), "needs threshold"),
    (lambda: nk.conv2d_int8(U8, W8, output="bits", threshold=np.zeros(5, np.int32),
                            direction=np.zeros(5, np.int8)), r"\+1 or -1"),
    (lambda: nk.conv2d_int8(U8, W8, output="int8", multiplier=[1] * 5, bias=[0] * 5,
                            shift=0), "shift"),
    (lambda: nk.conv2d_int8(U8, W8, output="int8", multiplier=[1] * 4, bias=[0] * 5,
                            shift=3), "multiplier must have 5"),
    (lambda: nk.conv2d_int8(U8, W8, output="int8", multiplier=[1.5] * 5, bias=[0] * 5,
                            shift=3), "integers"),
    (lambda: nk.conv2d_int8(U8, W8, output="float", scale=[1.0] * 5), "needs bias"),
    (lambda: nk.conv2d_int8(U8, W8, scale=[1.0] * 5), "not used"),
    (lambda: nk.conv2d_int8(U8, W8, output="int4"), "output must be"),
    (lambda: nk.dense_int8(np.zeros((2, 3), np.int8), np.zeros((4, 5), np.int8)), "input features"),
    (lambda: nk.dense_float(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float64)), "float32"),
    (lambda: nk.dense_float(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32),
                            np.zeros(3, np.float32)), "bias must have 4"),
    (lambda: nk.dense_float(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32).T.copy().T),
     "C-contiguous"),
])
def test_network_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call,match", [
    (lambda: engine.maxpool2d_int8(I8, np.empty((1, 2, 2, 8), np.int16), 2, 2, 2, 2, 0, 0), "out"),
    (lambda: engine.maxpool2d_int8(I8, np.empty((1, 3, 2, 8), np.int8), 2, 2, 2, 2, 0, 0), "shape"),
    (lambda: engine.maxpool2d_bits(np.zeros((1, 4, 4, 1), np.uint64),
                                   np.empty((1, 4, 4, 1), np.uint64), 1, 1, 1, 1, -1, 0), "padding"),
    (lambda: engine.conv2d_int8(U8, W8, np.empty((1, 2, 2, 5), np.int32), 1, 1, 0, 0,
                                np.zeros(3, np.int64)), "zero_point must have dtype int32"),
    (lambda: engine.conv2d_int8(U8, W8, np.empty((1, 2, 2, 5), np.int32), 1, 1, 0, 0,
                                np.zeros(3, np.int32), "int8", multiplier=np.ones(5, np.int32),
                                bias=np.zeros(5, np.int32), shift=3), "out must have dtype int8"),
    (lambda: engine.conv2d_int8(U8, W8, np.empty((1, 2, 2, 1), np.uint64), 1, 1, 0, 0, None,
                                "bits", threshold=np.zeros(5, np.int32),
                                direction=np.ones(5, np.int32)), "direction must have dtype int8"),
    (lambda: engine.add_int8(I8, I8, np.empty((1, 4, 4, 8), np.int8)[..., ::2], 1, 1, 1), "out"),
    (lambda: engine.dense_float(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32), None,
                                np.empty((2, 5), np.float32)), "shape"),
])
def test_network_engine_bindings_validate(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_network_empty_inputs_are_fine():
    """Zero-sized batches and channel counts run (and write nothing) instead of crashing."""
    for isa in engine.supported_isas():
        assert nk.maxpool2d_int8(np.zeros((0, 4, 4, 8), np.int8), 2, isa=isa).shape == (0, 2, 2, 8)
        assert nk.avgpool2d_int8(np.zeros((2, 4, 4, 0), np.int8), 2, isa=isa).shape == (2, 2, 2, 0)
        assert nk.global_avgpool_float(np.zeros((0, 3, 3, 5), np.float32), isa=isa).shape == (0, 5)
        assert nk.add_int8(np.zeros(0, np.int8), np.zeros(0, np.int8), 2, 2, 1, isa=isa).size == 0
        assert nk.conv2d_int8(np.zeros((0, 5, 5, 3), np.uint8), np.zeros((4, 3, 3, 3), np.int8),
                              isa=isa).shape == (0, 3, 3, 4)
        assert nk.dense_float(np.zeros((0, 9), np.float32), np.zeros((3, 9), np.float32),
                              isa=isa).shape == (0, 3)


def test_network_add_may_run_in_place():
    a = np.arange(-60, 60, dtype=np.int8)
    b = np.ones(120, np.int8)
    want = np.clip(a.astype(int) + 1, -127, 127)
    nk.add_int8(a, b, 2**8, 2**8, 8, out=a)
    np.testing.assert_array_equal(a, want)
