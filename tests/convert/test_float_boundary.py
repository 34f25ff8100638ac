"""Float-boundary export (``to_bytes(..., float_boundary=True)``): the first convolution is
``conv2d_f32`` on the normalized image; the engine equals the simulation value by value on every
ISA; the float first layer equals the float model's to float32 rounding (the int8 one does not);
bad input to ``conv2d_f32`` is rejected by both loaders alike."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import onebit.convert as cv
from onebit import FormatError
from onebit.convert import ConversionError
from onebit.convert.compare import engine_vs_simulation
from onebit.runtime import Session
from onebit.runtime import format as fmt

from tiny_models import CIFAR_SPEC, forward_with_outputs, tiny_model

SPEC = dict(CIFAR_SPEC, shape=[12, 12, 3])


@pytest.fixture(scope="module")
def model():
    return tiny_model(0, in_ch=3, size=12)


@pytest.fixture(scope="module")
def fb_bytes(model):
    return cv.to_bytes(model, input_spec=SPEC, float_boundary=True)


def test_float_boundary_engine_equals_simulation(fb_bytes, isa):
    mf = fmt.loads(fb_bytes)
    assert mf.ops[0].type == "conv2d_f32" and mf.input_spec["zero_point"] is None
    sess = Session(fb_bytes, isa=isa, threads=2)
    u = np.random.default_rng(5).integers(0, 256, (3, 12, 12, 3), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert set(diffs) == set(mf.values) - {"input"}


def test_float_boundary_first_layer_equals_float_model(model, fb_bytes):
    u = torch.randint(0, 256, (8, 12, 12, 3), dtype=torch.uint8)
    x = (u.permute(0, 3, 1, 2).double() / 255 - torch.tensor(SPEC["mean"]).view(1, 3, 1, 1)) \
        / torch.tensor(SPEC["std"]).view(1, 3, 1, 1)
    _, acts = forward_with_outputs(model, x.float(), "modules")
    want = acts["2"].double()  # conv -> BN -> hardtanh
    sim = cv.simulate(fmt.loads(fb_bytes))
    _, env = sim(u, return_values=True)
    assert [op.type for op in sim.ops[:2]] == ["conv2d_f32", "clamp_f32"]
    got = env[sim.ops[1].output].double()
    scale = want.abs().max()
    assert (got - want).abs().max() <= 1e-5 * scale
    assert scale > 0.5


def test_float_boundary_logits_closer_than_int8(model, fb_bytes):
    u = torch.randint(0, 256, (64, 12, 12, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    x = (u.permute(0, 3, 1, 2).double() / 255 - torch.tensor(SPEC["mean"]).view(1, 3, 1, 1)) \
        / torch.tensor(SPEC["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = model(x.float()).double()
    err = {}
    for fb in (True, False):
        data = fb_bytes if fb else cv.to_bytes(model, input_spec=SPEC)
        err[fb] = (torch.from_numpy(Session(data).run(u.numpy())).double() - want).abs().mean().item()
    assert err[True] < err[False], err


def test_float_boundary_clip_block_after_first_layer_refused():
    m = tiny_model(0, in_ch=3, size=12)
    from onebit.nn import ClipBlock

    m[2] = ClipBlock(2.0)
    with pytest.raises(ConversionError, match="ClipBlock"):
        cv.to_bytes(m, input_spec=SPEC, float_boundary=True)


def test_conv2d_f32_malformed_rejected_by_both_loaders(fb_bytes):
    import json
    import struct

    from onebit.runtime.engine import engine

    n = struct.unpack("<Q", fb_bytes[:8])[0]
    header, body = json.loads(fb_bytes[8:8 + n]), fb_bytes[8 + n:]
    graph = json.loads(header["__metadata__"]["graph"])
    first = graph["ops"][0]
    del first["tensors"]["in_scale"]  # u8 input needs its normalization
    header["__metadata__"]["graph"] = json.dumps(graph)
    hb = json.dumps(header).encode()
    data = struct.pack("<Q", len(hb)) + hb + body
    for load in (fmt.loads, engine.validate_model):
        with pytest.raises(FormatError, match="tensor roles|in_scale"):
            load(data)
