"""Padding through converter, file, simulation and engine: one-padded binary convolutions
(``pad_value`` 1, or a padding layer before a binary conv: sign(0) = +1), padding before and after
the input (``padding_end``: Keras "same" with stride 2 on even inputs) for the int8 and binary
convolutions, and the files' format version; both loaders reject bad padding attributes."""
import json

import numpy as np
import pytest
import torch
from torch import nn

import onebit.convert as cv
from onebit import FormatError
from onebit.convert import ConversionError
from onebit.convert.compare import engine_vs_simulation
from onebit.models import randomize_bn
from onebit.nn import BinaryConv2d, BinaryLinear
from onebit.runtime import Session
from onebit.runtime import format as fmt

from tiny_models import RAW_SPEC, assert_simulation_equals_float


def padded_model(seed=0, pad_layer=False):
    """Uneven int8 first conv (ZeroPad2d after the input), a one-padded binary conv (its own
    ``pad_value=1``, or ``ZeroPad2d`` + padding 0 with ``pad_layer``), a stride-2 binary conv
    padded only after the input (true zero), binary dense, float head. Exact on RAW_SPEC."""
    torch.manual_seed(seed)
    one = ([nn.ZeroPad2d(1), BinaryConv2d(9, 70, 3, bias=False)] if pad_layer
           else [BinaryConv2d(9, 70, 3, padding=1, pad_value=1, bias=False)])
    layers = [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(2, 9, 3, stride=2), nn.BatchNorm2d(9), nn.Hardtanh(),
              *one, nn.BatchNorm2d(70), nn.Hardtanh(),
              BinaryConv2d(70, 65, 3, stride=2, padding=0, padding_end=1, bias=False), nn.BatchNorm2d(65),
              nn.Flatten(), BinaryLinear(65 * 9, 20), nn.BatchNorm1d(20), nn.Linear(20, 7)]
    m = nn.Sequential(*layers)
    with torch.no_grad():
        m[1].weight.copy_(torch.randint(-1, 2, m[1].weight.shape).float())
        m[1].weight[:, 0, 0, 0] = 1.0  # max |w| = 1 per output channel: int8 weights exact
        m[1].bias.uniform_(-20, 20)
    randomize_bn(m, seed, input_shape=(2, 12, 12))
    return m.eval()


def _graph(data):
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    return header, json.loads(header["__metadata__"]["graph"])


@pytest.mark.parametrize("pad_layer", [False, True], ids=["pad_value", "zeropad-layer"])
def test_padding_simulation_equals_float_and_engine(pad_layer, isa):
    m = padded_model(1, pad_layer)
    data = cv.to_bytes(m, input_spec=RAW_SPEC)
    header, graph = _graph(data)
    assert header["__metadata__"]["format_version"] == "2"  # a one-padded op: version 2
    ops = {op["type"] + str(i): op["attrs"] for i, op in enumerate(graph["ops"])}
    first = next(a for k, a in ops.items() if k.startswith("conv2d_u8"))
    assert first["padding"] == [0, 0] and first["padding_end"] == [1, 1]
    bconvs = [a for k, a in ops.items() if k.startswith("bconv2d")]
    assert bconvs[0]["padding"] == [1, 1] and bconvs[0]["pad_value"] == 1 and "padding_end" not in bconvs[0]
    assert bconvs[1]["padding"] == [0, 0] and bconvs[1]["padding_end"] == [1, 1] and "pad_value" not in bconvs[1]
    sim = cv.simulate(fmt.loads(data))
    assert_simulation_equals_float(sim, m, 48)
    sess = Session(data, isa=isa, threads=2)
    u = np.random.default_rng(3).integers(0, 256, (5, 12, 12, 2), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, sim, u)
    assert set(diffs) == set(sess.model.values) - {"input"}


@pytest.mark.parametrize("pad_layer", [False, True], ids=["pad_value", "zeropad-layer"])
def test_padding_float_boundary_first_conv_padded_after(pad_layer, isa):
    # the float32 input layer (conv2d_f32) pads after the input only (Keras "same", stride 2, even
    # input): the engine equals the simulation value by value, and the first layer the float module's
    m = padded_model(1, pad_layer)
    data = cv.to_bytes(m, input_spec=RAW_SPEC, float_boundary=True)
    _, graph = _graph(data)
    first = graph["ops"][0]
    assert first["type"] == "conv2d_f32" and first["attrs"]["padding"] == [0, 0]
    assert first["attrs"]["padding_end"] == [1, 1]
    sim = cv.simulate(fmt.loads(data))
    u = np.random.default_rng(4).integers(0, 256, (5, 12, 12, 2), dtype=np.uint8)
    _, env = sim(torch.from_numpy(u), return_values=True)
    with torch.no_grad():
        want = m[:3](torch.from_numpy(u).permute(0, 3, 1, 2).float())  # pad, conv, BN
    got = env[graph["ops"][0]["output"]]
    assert got.shape == want.shape == (5, 9, 6, 6)
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    sess = Session(data, isa=isa, threads=2)
    diffs = engine_vs_simulation(sess, sim, u)
    assert set(diffs) == set(sess.model.values) - {"input"}


def test_padding_one_padding_changes_the_result():
    # the same weights with true-zero padding give other signs at the border: the attribute counts
    m = padded_model(2)
    m1 = padded_model(2)
    m1[4].pad_value = 0
    u = torch.randint(0, 256, (16, 2, 12, 12), generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():
        assert not torch.equal(m[:6](u), m1[:6](u))
    s0, s1 = cv.simulate(m, input_spec=RAW_SPEC), cv.simulate(m1, input_spec=RAW_SPEC)
    assert not torch.equal(s0(u.permute(0, 2, 3, 1).to(torch.uint8)), s1(u.permute(0, 2, 3, 1).to(torch.uint8)))
    _, g1 = _graph(cv.to_bytes(m1, input_spec=RAW_SPEC))
    assert all(op["attrs"].get("pad_value", 0) == 0 for op in g1["ops"])


def test_padding_files_without_one_padding_stay_version_1():
    m = padded_model(0)
    m[4].pad_value = 0
    header, _ = _graph(cv.to_bytes(m, input_spec=RAW_SPEC))
    assert header["__metadata__"]["format_version"] == "1"


def _edited(data, fn, version=None):
    header, graph = _graph(data)
    fn(graph)
    header["__metadata__"]["graph"] = json.dumps(graph)
    if version is not None:
        header["__metadata__"]["format_version"] = version
    hb = json.dumps(header).encode()
    n = int.from_bytes(data[:8], "little")
    return len(hb).to_bytes(8, "little") + hb + data[8 + n:]


def _bconv(graph, i=0):
    return [op for op in graph["ops"] if op["type"] == "bconv2d"][i]["attrs"]


@pytest.mark.parametrize("edit, version, match", [
    (lambda g: None, "1", "pad_value 1 \\(one-padding\\) needs format_version 2"),
    (lambda g: _bconv(g).update(pad_value=2), None, "pad_value"),
    (lambda g: _bconv(g).update(pad_value=True), None, "pad_value"),
    (lambda g: _bconv(g, 1).update(padding_end=[3, 3]), None, "padding_end \\[3, 3\\] must be smaller"),
    (lambda g: _bconv(g, 1).update(padding_end=[1]), None, "padding_end"),
    (lambda g: _bconv(g, 1).update(padding_end=[-1, -1]), None, "padding_end"),
    (lambda g: _bconv(g, 1).pop("padding_end"), None, "declared value"),  # the shape changes
], ids=["v1-file", "value-2", "value-bool", "end-too-large", "end-not-pair", "end-negative", "end-dropped"])
def test_padding_bad_attributes_rejected_by_both_loaders(edit, version, match):
    from onebit.runtime.engine import engine

    data = _edited(cv.to_bytes(padded_model(0), input_spec=RAW_SPEC), edit, version)
    with pytest.raises(FormatError, match=match):
        fmt.loads(data)
    with pytest.raises(FormatError, match=match):
        engine.validate_model(data)


def test_padding_layer_errors():
    base = [nn.Conv2d(2, 9, 3, padding=1), nn.BatchNorm2d(9), nn.Hardtanh()]
    tail = [nn.BatchNorm2d(70), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(70, 7)]
    cases = [
        ([nn.ConstantPad2d(1, -0.5), BinaryConv2d(9, 70, 3, bias=False)], "binarizes to -1"),
        ([nn.ZeroPad2d(1), BinaryConv2d(9, 70, 3, padding=1, bias=False)], "pads as well"),
        ([nn.ZeroPad2d((1, 1, 0, 2)), BinaryConv2d(9, 70, 3, bias=False)], "pads both axes alike"),
        ([nn.ZeroPad2d(1), nn.BatchNorm2d(9), BinaryConv2d(9, 70, 3, bias=False)], "right before a convolution"),
    ]
    for mid, match in cases:
        m = nn.Sequential(*base, *mid, *tail).eval()
        with pytest.raises(ConversionError, match=match):
            cv.to_bytes(m, input_spec=RAW_SPEC)
    first = nn.Sequential(nn.ConstantPad2d(1, 0.5), nn.Conv2d(2, 9, 3), nn.Flatten(), nn.Linear(9 * 144, 3)).eval()
    with pytest.raises(ConversionError, match="real 0 only"):
        cv.to_bytes(first, input_spec=RAW_SPEC)
    with pytest.raises(ValueError, match="pad_value must be 0"):
        BinaryConv2d(3, 3, 3, pad_value=2)
