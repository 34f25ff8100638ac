"""Depthwise convolution end to end: a torch ``nn.Conv2d(groups=C)`` after a ClipBlock converts to
``dwconv2d_i8`` with each output stage (bits, int8, float); the engine equals the integer
simulation value by value on every ISA; the simulation follows the float model; both loaders
reject malformed depthwise ops with the same error; a grouped (not depthwise) conv is the dense
conv with its block-diagonal kernel; unsupported depthwise variants are clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import onebit.convert as cv
from onebit.convert import ConversionError
from onebit.convert.compare import engine_vs_simulation
from onebit.models import randomize_bn
from onebit.nn import BinaryConv2d, ClipBlock
from onebit.runtime import Session
from onebit.runtime import format as fmt

from file_edits import both_reject, edit_op, join, split

SPEC = {"dataset": "random", "shape": [13, 11, 3], "mean": [0.45] * 3, "std": [0.25] * 3}


def _model(stage: str, channels: int = 40, stride: int = 2, seed: int = 0) -> nn.Sequential:
    """first conv -> BN -> clip -> depthwise 3x3 -> BN -> {sign: binary conv | clip | float head}."""
    torch.manual_seed(seed)
    c = channels
    layers = [nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), ClipBlock(2.0),
              nn.Conv2d(c, c, 3, stride=stride, padding=1, groups=c, bias=stage == "float"), nn.BatchNorm2d(c)]
    oh, ow = (13 + 2 - 3) // stride + 1, (11 + 2 - 3) // stride + 1
    if stage == "bits":
        layers += [nn.Hardtanh(), BinaryConv2d(c, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24),
                   nn.Flatten(), nn.Linear(24 * oh * ow, 10)]
    elif stage == "int8":
        layers += [ClipBlock(3.0), nn.Flatten(), nn.Linear(c * oh * ow, 10)]
    else:
        layers += [nn.Flatten(), nn.Linear(c * oh * ow, 10)]
    m = nn.Sequential(*layers)
    randomize_bn(m, seed, input_shape=(3, 13, 11))
    return m.eval()


@pytest.mark.parametrize("stage", ["bits", "int8", "float"])
def test_depthwise_engine_equals_simulation(stage, isa):
    data = cv.to_bytes(_model(stage), input_spec=SPEC)
    mf = fmt.loads(data)
    dw = [op for op in mf.ops if op.type == "dwconv2d_i8"]
    assert len(dw) == 1 and dw[0].attrs["output"] == {"bits": "bits", "int8": "int8", "float": "f32"}[stage]
    assert mf.tensors[dw[0].tensors["weight"]].shape == (3, 3, 40)
    sess = Session(data, isa=isa, threads=2)
    u = np.random.default_rng(3).integers(0, 256, (3,) + sess.input_shape, dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert set(diffs) == set(mf.values) - {"input"}


def test_depthwise_simulation_follows_the_float_model():
    """int8 weights per channel are the only approximation: the simulated depthwise output (int8,
    dequantized) stays within a few grid steps of the float model's clipped output."""
    m = _model("int8", seed=1)
    sim = cv.simulate(m, input_spec=SPEC)
    u = torch.randint(0, 256, (4, 13, 11, 3), dtype=torch.uint8)
    x = (u.permute(0, 3, 1, 2).double() / 255 - 0.45) / 0.25
    with torch.no_grad():
        want = m[:6](x.float()).double()
    _, env = sim(u, return_values=True)
    name = next(op.output for op in sim.ops if op.type == "dwconv2d_i8")
    got = env[name].double() * sim.values[name].scale
    step = 3.0 / 127
    assert (got - want).abs().max() <= 4 * step
    assert (got - want).abs().mean() <= 0.5 * step
    assert want.abs().max() > 10 * step  # not a degenerate map


def test_depthwise_stride1_odd_channels_engine_equals_simulation(isa):
    data = cv.to_bytes(_model("bits", channels=17, stride=1, seed=2), input_spec=SPEC)
    sess = Session(data, isa=isa, threads=1)
    u = np.random.default_rng(4).integers(0, 256, (2,) + sess.input_shape, dtype=np.uint8)
    engine_vs_simulation(sess, cv.simulate(sess.model), u)


def test_grouped_conv_is_a_block_diagonal_int8_conv(isa):
    """groups=8 (not depthwise) on int8 data: one conv2d_i8 whose kernel is zero off the groups."""
    m = _model("bits")
    m[3] = nn.Conv2d(40, 40, 3, stride=2, padding=1, groups=8, bias=False)
    randomize_bn(m, 0, input_shape=(3, 13, 11))
    data = cv.to_bytes(m.eval(), input_spec=SPEC)
    mf = fmt.loads(data)
    conv = [op for op in mf.ops if op.type == "conv2d_i8"]
    assert len(conv) == 1
    w = np.asarray(mf.tensors[conv[0].tensors["weight"]])  # (Cout, KH, KW, Cin)
    same_group = (np.arange(40)[:, None] // 5) == (np.arange(40)[None, :] // 5)
    assert w.shape == (40, 3, 3, 40) and not w.transpose(0, 3, 1, 2)[~same_group].any()
    assert w.transpose(0, 3, 1, 2)[same_group].any()
    sess = Session(data, isa=isa, threads=2)
    u = np.random.default_rng(5).integers(0, 256, (3,) + sess.input_shape, dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert max(diffs.values()) == 0.0, diffs


def test_depthwise_conversion_errors():
    m = _model("bits")
    m[3] = nn.Conv2d(40, 40, 3, stride=2, padding=2, dilation=2, groups=40, bias=False)
    with pytest.raises(ConversionError, match="dilation"):
        cv.to_bytes(m, input_spec=SPEC)


@pytest.mark.parametrize("float_boundary", [False, True])
def test_depthwise_on_float_data_engine_equals_simulation(float_boundary, isa):
    """Without a clip block the depthwise conv reads float32 (the first layer's float stage, or the
    float first layer of the float-boundary mode): dwconv2d_f32, BN folded into its weights."""
    m = _model("bits")
    m[2] = nn.Hardtanh()
    data = cv.to_bytes(m, input_spec=SPEC, float_boundary=float_boundary)
    mf = fmt.loads(data)
    assert [op.type for op in mf.ops].count("dwconv2d_f32") == 1
    sess = Session(data, isa=isa, threads=2)
    u = np.random.default_rng(6).integers(0, 256, (2,) + sess.input_shape, dtype=np.uint8)
    engine_vs_simulation(sess, cv.simulate(sess.model), u)
    if float_boundary:  # up to the depthwise conv's BN the engine is the float model to rounding
        x = (torch.from_numpy(u).permute(0, 3, 1, 2).double() / 255 - 0.45) / 0.25
        with torch.no_grad():
            want = m[:5](x.float()).double()
        got = torch.from_numpy(sess.run_values(u)[next(op.output for op in mf.ops if op.type == "dwconv2d_f32")])
        assert (got.permute(0, 3, 1, 2).double() - want).abs().max() <= 1e-5 * want.abs().max()


def test_depthwise_malformed_ops_rejected_by_both_loaders():
    data = cv.to_bytes(_model("bits"), input_spec=SPEC)

    def channels(op, graph, header):
        op["attrs"]["out_channels"] = 20
    both_reject(edit_op(data, "dwconv2d_i8", channels), "keeps the channels")

    def kind(op, graph, header):  # the depthwise op reading the uint8 image
        op["inputs"] = [graph["input"]]
    both_reject(edit_op(data, "dwconv2d_i8", kind), "int8")

    def weight_shape(op, graph, header):
        header[op["tensors"]["weight"]]["shape"] = [40, 3, 3]
    both_reject(edit_op(data, "dwconv2d_i8", weight_shape), "weight")

    header, body = split(data)
    graph = json.loads(header["__metadata__"]["graph"])
    op = next(o for o in graph["ops"] if o["type"] == "dwconv2d_i8")
    b, _ = header[op["tensors"]["weight"]]["data_offsets"]
    body = bytearray(body)
    body[b] = 0x80  # -128: off the symmetric grid
    both_reject(join(header, bytes(body)), r"\[-127, 127\]")


def _uneven_model(seed: int = 0) -> nn.Sequential:
    """Keras "same" with stride 2 on an even map: a ZeroPad2d (0 before, 1 after the input) before a
    depthwise conv without padding, reading float data (first layer's float stage)."""
    torch.manual_seed(seed)
    c = 24
    m = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.Hardtanh(),
                      nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(c, c, 3, stride=2, groups=c, bias=False),
                      nn.BatchNorm2d(c), nn.Hardtanh(), BinaryConv2d(c, 16, 3, padding=1, bias=False),
                      nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(16 * 6 * 5, 10))
    randomize_bn(m, seed, input_shape=(3, 12, 10))
    return m.eval()


@pytest.mark.parametrize("float_boundary", [False, True])
def test_depthwise_uneven_padding_engine_equals_simulation(float_boundary, isa):
    """``padding_end`` on dwconv2d_f32: the op pads 0 before and 1 after the input; the engine equals
    the simulation on every ISA, and (float boundary) the float model up to the depthwise BN."""
    spec = dict(SPEC, shape=[12, 10, 3])
    m = _uneven_model()
    data = cv.to_bytes(m, input_spec=spec, float_boundary=float_boundary)
    mf = fmt.loads(data)
    dw = next(op for op in mf.ops if op.type == "dwconv2d_f32")
    assert dw.attrs["padding"] == [0, 0] and dw.attrs["padding_end"] == [1, 1]
    assert mf.values[dw.output].shape == (6, 5, 24)
    sess = Session(data, isa=isa, threads=2)
    u = np.random.default_rng(7).integers(0, 256, (3,) + sess.input_shape, dtype=np.uint8)
    engine_vs_simulation(sess, cv.simulate(sess.model), u)
    if float_boundary:
        x = (torch.from_numpy(u).permute(0, 3, 1, 2).double() / 255 - 0.45) / 0.25
        with torch.no_grad():
            want = m[:6](x.float()).double()
        got = torch.from_numpy(sess.run_values(u)[dw.output]).permute(0, 3, 1, 2).double()
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()


def test_depthwise_padding_end_checked_by_both_loaders():
    data = cv.to_bytes(_uneven_model(), input_spec=dict(SPEC, shape=[12, 10, 3]))

    def too_large(op, graph, header):
        op["attrs"]["padding_end"] = [3, 1]
    both_reject(edit_op(data, "dwconv2d_f32", too_large), "padding_end")

    def symmetric(op, graph, header):  # the declared output no longer matches the geometry
        del op["attrs"]["padding_end"]
    both_reject(edit_op(data, "dwconv2d_f32", symmetric), r"declared value .* but the op produces")
