"""Dilated binary convolutions (Larq Zoo's BinaryDenseNet37Dilated): written as the undilated
``bconv2d`` of the spread kernel whose gaps are pruned weights (``weight_word_mask``), exact at
every tap and border; engine == integer simulation bit for bit on every ISA, and the
float-boundary engine == the torch module to float32 rounding."""
import numpy as np
import pytest
import torch
from torch import nn

import onebit.convert as cv
from onebit.convert.compare import engine_vs_simulation
from onebit.convert.graph import dilate_kernel
from onebit.models import randomize_bn
from onebit.nn import BinaryConv2d
from onebit.runtime import Session
from onebit.runtime import format as fmt

SPEC = {"dataset": "random", "shape": [12, 12, 3], "mean": [0.45] * 3, "std": [0.25] * 3}


def _model(pad_value=0, seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 70, 3, padding=1), nn.BatchNorm2d(70), nn.Hardtanh(),
                      BinaryConv2d(70, 40, 3, padding=2, dilation=2, bias=False, pad_value=pad_value),
                      nn.BatchNorm2d(40), nn.Hardtanh(),
                      BinaryConv2d(40, 24, 3, padding=4, dilation=4, bias=False, pad_value=pad_value),
                      nn.BatchNorm2d(24), nn.Flatten(), nn.Linear(24 * 12 * 12, 10))
    randomize_bn(m, seed, input_shape=(3, 12, 12))
    return m.eval()


def test_dilate_kernel_spreads_the_taps():
    w = np.arange(2 * 1 * 3 * 3).reshape(2, 1, 3, 3) % 2 * 2 - 1.0
    w2, keep = dilate_kernel(w, None, (2, 3))
    assert w2.shape == keep.shape == (2, 1, 5, 7)
    assert (w2[:, :, ::2, ::3] == w).all() and keep[:, :, ::2, ::3].all() and keep.sum() == w.size
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
    want = torch.nn.functional.conv2d(x, torch.from_numpy(w), dilation=(2, 3), padding=(2, 3))
    got = torch.nn.functional.conv2d(x, torch.from_numpy(w2 * keep), padding=(2, 3))
    assert torch.allclose(want, got, atol=1e-5)


@pytest.mark.parametrize("pad_value", [0, 1])
def test_dilated_engine_equals_simulation(pad_value, isa):
    data = cv.to_bytes(_model(pad_value), input_spec=SPEC)
    mf = fmt.loads(data)
    convs = [op for op in mf.ops if op.type == "bconv2d"]
    assert [op.attrs["kernel"] for op in convs] == [[5, 5], [9, 9]]
    assert all("weight_word_mask" in op.tensors for op in convs)
    assert [op.attrs["accumulator_bound"] for op in convs] == [9 * 70, 9 * 40]
    sess = Session(data, isa=isa, threads=2)
    u = np.random.default_rng(1).integers(0, 256, (3,) + sess.input_shape, dtype=np.uint8)
    assert max(engine_vs_simulation(sess, cv.simulate(sess.model), u).values()) == 0.0


@pytest.mark.parametrize("pad_value", [0, 1])
def test_dilated_float_boundary_follows_the_module(pad_value):
    m = _model(pad_value, seed=2)
    u = np.random.default_rng(2).integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    got = Session(cv.to_bytes(m, input_spec=SPEC, float_boundary=True)).run(u)
    x = (torch.from_numpy(u).permute(0, 3, 1, 2).double() / 255 - 0.45) / 0.25
    with torch.no_grad():
        want = m(x.float()).double().numpy()
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
