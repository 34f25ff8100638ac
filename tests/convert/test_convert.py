"""Converter: graphs of the zoo, exactness against the float model where no rounding is involved,
unsupported layers, golden metadata, export/simulate from a file."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import onebit.convert as cv
from onebit.convert import ConversionError
from onebit.models import randomize_bn
from onebit.nn import BinaryConv2d, BinaryLinear

from tiny_models import (MNIST_SPEC, RAW_SPEC, assert_simulation_equals_float, exact_model, forward_with_outputs,
                         tiny_model)

GOLDEN = Path(__file__).parent / "golden_tiny_metadata.json"

@pytest.mark.parametrize("clip", [False, True], ids=["hardtanh", "clipblock"])
def test_convert_simulation_equals_float_model_when_exact(clip):
    # the ClipBlock variant rounds half-even in torch and half-up in the engine: ties are
    # measure-zero for random BN parameters, so both must agree here too
    m = exact_model(1, clip)
    assert_simulation_equals_float(cv.simulate(m, input_spec=RAW_SPEC), m, 64)


def test_convert_simulation_layers_equal_float_layers():
    # value by value: every bits value equals sign of the float model's activation at that layer
    m = exact_model(2)
    sim = cv.simulate(m, input_spec=RAW_SPEC)
    u = torch.randint(0, 256, (16, 12, 12, 2), dtype=torch.uint8)
    _, env = sim(u, return_values=True)
    _, acts = forward_with_outputs(m, u.permute(0, 3, 1, 2).float())
    # layer names: '0' conv -> bn '1'; '3' bconv -> bn '4' -> pool '5'; '7' bconv -> bn '8'
    pairs = {"0": "1", "3": "4", "5": "5", "7": "8"}
    for value, layer in pairs.items():
        sim_bits = env[value]
        ref = torch.where(acts[layer] >= 0, 1.0, -1.0).double()
        assert torch.equal(sim_bits.double(), ref), value


def test_convert_zoo_graphs():
    import onebit.models as om

    m = om.create("mnist-small")
    sim = cv.simulate(randomize_bn(m, 0, input_shape=m.input_shape).eval())
    types = [op.type for op in sim.ops]
    assert types[0] == "conv2d_u8" and types[-1] == "dense_f32"
    assert "maxpool2d" in types and "bconv2d" in types
    for op in sim.ops:
        if op.type in ("bconv2d", "bdense"):
            k = op.attrs["accumulator_bound"]
            assert op.attrs["accumulator_bits"] == (16 if k <= 32767 else 32)


def test_convert_unsupported_layer_names_path_and_type():
    m = tiny_model(0)
    m[2] = nn.GELU()
    with pytest.raises(ConversionError, match=r"layer '2'.*GELU"):
        cv.to_bytes(m, input_spec=MNIST_SPEC)
    m = tiny_model(0)
    m[9] = nn.Sigmoid()
    with pytest.raises(ConversionError, match=r"layer '9' of type Sigmoid"):
        cv.to_bytes(m, input_spec=MNIST_SPEC)


def test_convert_rejects_functional_op_between_layers():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3)
            self.bn = nn.BatchNorm2d(8)
            self.fc = BinaryLinear(8 * 26 * 26, 10)

        def forward(self, x):
            return self.fc(torch.tanh(self.bn(self.conv(x))).flatten(1))

    with pytest.raises(ConversionError, match="'fc'.*does not consume"):
        cv.to_bytes(M().eval(), input_spec=MNIST_SPEC)


def test_convert_export_then_simulate_from_file(tmp_path):
    m = tiny_model(4, clip=True)
    p = cv.export(m, tmp_path / "t.onebit", input_spec=MNIST_SPEC)
    u = torch.randint(0, 256, (3, 28, 28, 1), dtype=torch.uint8)
    assert torch.equal(cv.simulate(p)(u), cv.simulate(m, input_spec=MNIST_SPEC)(u))


def _metadata(data: bytes) -> dict:
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = {k: (json.loads(v) if k not in ("format", "format_version") else v)
            for k, v in header.pop("__metadata__").items()}
    meta["producer"] = {"onebit": "<version>", "torch": "<version>", "model": meta["producer"]["model"]}
    meta["tensors"] = {k: [v["dtype"], v["shape"]] for k, v in header.items()}
    return meta


def test_convert_golden_metadata():
    """Header and metadata of a fixed-seed model (regenerate deliberately: ONEBIT_REGEN_GOLDEN=1)."""
    import os

    data = cv.to_bytes(tiny_model(0, clip=True), input_spec=MNIST_SPEC)
    got = _metadata(data)
    if os.environ.get("ONEBIT_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(GOLDEN.read_text())
    # the folded parameters of the fixed-seed model are pinned too
    from onebit.runtime.format import loads

    mf = loads(data)
    digest = {k: int(np.asarray(v).astype(np.int64).sum()) for k, v in mf.tensors.items()
              if v.dtype.kind in "iu" and v.dtype != np.uint64}
    assert digest == got_digest(digest)


def got_digest(digest):
    path = GOLDEN.with_name("golden_tiny_digest.json")
    import os

    if os.environ.get("ONEBIT_REGEN_GOLDEN"):
        path.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", ["birealnet18", "quicknet-small"])
def test_convert_residual_int8_matches_float_model(name):
    # all float convs with weights in {-1, 0, 1} (exact int8) and raw uint8 input: the int8 graph
    # equals the float model wherever float32 rounding of the model itself does not decide a tie
    import onebit.models as om

    torch.manual_seed(0)
    m = om.create(name, clip_block=True, stem="cifar", width=0.25)
    with torch.no_grad():
        for mod in m.modules():
            if type(mod) is nn.Conv2d:
                mod.weight.copy_(torch.randint(-1, 2, mod.weight.shape).float())
                mod.weight[:, 0, 0, 0] = 1.0
    randomize_bn(m, 0, input_shape=m.input_shape).eval()
    spec = {"dataset": "raw", "shape": [32, 32, 3], "mean": [0.0] * 3, "std": [1 / 255] * 3}
    sim = cv.simulate(m, input_spec=spec)
    u = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    ref, acts = forward_with_outputs(m, u.permute(0, 3, 1, 2).float(), "modules")
    out, env = sim(u, return_values=True)
    first = "body.s1b1"
    # (q * scale in float64 vs the model's float32 q * s: equal to float32 rounding)
    assert torch.allclose(env[f"{first}.add"].double() * sim.values[f"{first}.add"].scale, acts[first].double(),
                          rtol=0, atol=1e-5)
    stem = env["stem.conv"].double() * sim.values["stem.conv"].scale
    assert torch.allclose(stem, acts["stem.clip"].double(), rtol=0, atol=1e-5)
    last = [k for k in env if k.endswith(".add")][-1]
    frac = ((env[last].double() * sim.values[last].scale - acts[last[:-4]].double()).abs() > 1e-5).double().mean()
    assert frac < 0.5  # rounding ties grow through the random network but do not take it over
    del out, ref  # logits of a random residual net amplify those ties: not compared


@pytest.mark.parametrize("variant", ["xnor-scale", "relu", "prelu", "bias"])
def test_convert_layer_variants_match_float_model(variant):
    # per-channel XNOR scale, ReLU / PReLU before a sign (constant or sign-preserving channels),
    # conv bias: all fold into the same thresholds; signs must equal the float model's
    m = exact_model(3)
    with torch.no_grad():
        if variant == "xnor-scale":
            m[3].scale = "channel"
            m[7].scale = "channel"
        elif variant == "relu":
            m[6] = nn.ReLU()
        elif variant == "prelu":
            p = nn.PReLU(70)
            p.weight.copy_(torch.linspace(-0.5, 0.5, 70))
            m[6] = p
        else:
            m[3].bias = nn.Parameter(torch.randn(70) * 3)
    m.eval()
    assert_simulation_equals_float(cv.simulate(m, input_spec=RAW_SPEC), m, 32)
