"""A bit-plane model (input_bits) converts to bitplanes -> bconv2d_planes with no int8 convolution;
the engine equals the integer simulation bit for bit on every ISA; both loaders reject bad plane
lists and weight widths with the same kind of message; the converter rejects a normalization
that is not the file's; the window weight layout, the earlier taps layout and the fewest exact
weight planes."""
import json
import struct

import numpy as np
import pytest
import torch

import onebit.models
from onebit import FormatError
from onebit.convert import ConversionError, to_bytes
from onebit.convert.simulate import simulate
from onebit.models import randomize_bn
from onebit.runtime import Session
from onebit.runtime import format as fmt


def _model(name, bits, width):
    torch.manual_seed(0)
    m = onebit.models.create(name, width=width, input_bits=bits)
    return randomize_bn(m, 0, input_shape=m.input_shape).eval()


@pytest.fixture(scope="module", params=[("mnist-small", 4, 0.25), ("cifar-binarynet", [5, 6, 7, 15, 22, 23], 0.125),
                                        ("cifar-binarynet", 8, 0.125)], ids=lambda p: f"{p[0]}-{p[1]}")
def planes_file(request):
    m = _model(*request.param)
    return m, to_bytes(m)


def test_bitplanes_export_has_no_int8_conv(planes_file):
    m, data = planes_file
    types = [op.type for op in fmt.loads(data).ops]
    assert types[:2] == ["bitplanes", "bconv2d_planes"]
    assert "conv2d_u8" not in types and "conv2d_i8" not in types


def test_bitplanes_engine_equals_simulation(planes_file, isa):
    m, data = planes_file
    sim = simulate(m)
    c, h, w = m.input_shape
    u = np.random.default_rng(1).integers(0, 256, (3, h, w, c), dtype=np.uint8)
    ref = sim(torch.from_numpy(u)).numpy()
    assert np.array_equal(Session(data, isa=isa).run(u), ref)


def test_bitplanes_simulation_follows_the_float_model():
    m = _model("mnist-small", 8, 0.25)
    sim = simulate(m)
    u = np.random.default_rng(2).integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)
    x = (torch.from_numpy(u).permute(0, 3, 1, 2).float() / 255 - 0.1307) / 0.3081
    agree = (sim(torch.from_numpy(u)).argmax(1) == m(x).argmax(1)).float().mean().item()
    assert agree >= 0.75  # only the first layer's weights are rounded (odd 8-bit grid)


def _split(data):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def _edit_op(data, i, fn):
    header, body = _split(data)
    g = json.loads(header["__metadata__"]["graph"])
    fn(g["ops"][i]["attrs"])
    header["__metadata__"]["graph"] = json.dumps(g)
    hb = json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + body


@pytest.mark.parametrize("op,edit,match", [
    (0, lambda a: a.update(planes=[0, 24]), "outside"),
    (0, lambda a: a.update(planes=[]), "non-empty list"),
    (0, lambda a: a.update(planes=[7, 6]), "strictly increasing"),
    (0, lambda a: a.update(planes="all"), "non-empty list"),
    (1, lambda a: a.update(weight_bits=9), "weight_bits"),
    (1, lambda a: a.update(accumulator_bound=5), "accumulator_bound"),
    (1, lambda a: a.update(weight_layout="rows"), "weight_layout"),
    (1, lambda a: a.update(weight_layout=1), "weight_layout"),
    (1, lambda a: a.pop("weight_layout"), "weight"),  # taps layout declared, window tensor stored
], ids=["plane-out-of-range", "no-planes", "unsorted", "not-a-list", "weight-bits", "bound", "layout", "layout-type",
        "layout-missing"])
def test_bitplanes_both_loaders_reject_bad_attributes(op, edit, match):
    from onebit.runtime.engine import engine

    data = _edit_op(to_bytes(_model("cifar-binarynet", [6, 7, 15, 23], 0.125)), op, edit)
    with pytest.raises(FormatError, match=match):
        fmt.loads(data)
    with pytest.raises(FormatError, match=match):
        engine.validate_model(data)


def test_bitplanes_both_loaders_reject_weight_padding_bits():
    from onebit.runtime.engine import engine

    data = bytearray(to_bytes(_model("mnist-small", 4, 0.25)))
    mf = fmt.loads(bytes(data))
    op = mf.ops[1]
    header, _ = _split(bytes(data))
    n = struct.unpack("<Q", data[:8])[0]
    begin = header[op.tensors["weight"]]["data_offsets"][0]
    data[8 + n + begin + 7] |= 0x80  # bit 63 of the first word: a channel padding bit (Cin = 4)
    for load in (fmt.loads, engine.validate_model):
        with pytest.raises(FormatError, match="padding bits"):
            load(bytes(data))


def test_bitplanes_converter_rejects_a_foreign_normalization():
    m = _model("mnist-small", 4, 0.25)
    m.planes.set_normalization([0.5], [0.5])
    with pytest.raises(ConversionError, match="normalization"):
        to_bytes(m)


def test_bitplanes_export_packs_the_window(planes_file):
    m, data = planes_file
    op = fmt.loads(data).ops[1]
    a = op.attrs
    w = fmt.loads(data).tensors[op.tensors["weight"]]
    k = a["kernel"][0] * a["kernel"][1] * a["in_channels"]
    assert a["weight_layout"] == "window"
    assert w.shape == (a["weight_bits"], a["out_channels"], -(-k // 64))


def _taps_file(data):
    """The same model with its bconv2d_planes weights in the taps layout (no weight_layout)."""
    from onebit import bits
    from onebit.bitplanes import taps_weights

    header, _ = _split(data)
    meta = header["__metadata__"]
    graph = json.loads(meta["graph"])
    mf = fmt.loads(data)
    tensors = dict(mf.tensors)
    op = mf.ops[1]
    a = graph["ops"][1]["attrs"]
    assert a.pop("weight_layout") == "window"
    name = op.tensors["weight"]
    tensors[name] = bits.pack(taps_weights(tensors[name], "window", a["kernel"], a["in_channels"]))
    return fmt.dumps({k: json.loads(meta[k]) for k in ("producer", "input", "output")}, graph, tensors)


def test_bitplanes_taps_layout_file_still_runs(planes_file, isa):
    """A file written before the window layout (weights (M, Cout, KH, KW, W64)) loads in both
    loaders and gives the same outputs."""
    from onebit.runtime.engine import engine

    m, data = planes_file
    taps = _taps_file(data)
    assert len(taps) > len(data)
    engine.validate_model(taps)
    assert fmt.loads(taps).ops[1].attrs.get("weight_layout", "taps") == "taps"
    c, h, w = m.input_shape
    u = np.random.default_rng(4).integers(0, 256, (2, h, w, c), dtype=np.uint8)
    assert np.array_equal(Session(taps, isa=isa).run(u), Session(data, isa=isa).run(u))


def test_bitplanes_weights_on_a_coarse_grid_store_fewer_planes(isa):
    """First-layer weights on an odd 2-bit grid (per-channel scale) are stored as 2 weight planes,
    exactly; float weights keep 8."""
    m = _model("cifar-binarynet", 4, 0.125)
    assert fmt.loads(to_bytes(m)).ops[1].attrs["weight_bits"] == 8
    conv = m.conv0
    g = torch.Generator().manual_seed(5)
    v = 2 * torch.randint(-2, 2, conv.weight.shape, generator=g) + 1  # {-3, -1, 1, 3}
    v[:, 0, 0, 0] = 3  # every channel reaches the grid's top
    with torch.no_grad():
        conv.weight.copy_(v.float() * torch.rand(conv.weight.shape[0], 1, 1, 1, generator=g) * 0.1)
    data = to_bytes(m)
    op = fmt.loads(data).ops[1]
    assert op.attrs["weight_bits"] == 2 and op.attrs["accumulator_bound"] == 3 * 9 * 12
    u = np.random.default_rng(6).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert np.array_equal(Session(data, isa=isa).run(u), simulate(m)(torch.from_numpy(u)).numpy())
