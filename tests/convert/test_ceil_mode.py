"""ceil_mode=True pooling (PyTorch semantics) in the engine kernels, the file format, the
converter, the simulation and the Session: against PyTorch, and engine == simulation."""
import itertools
import json
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import onebit.convert as cv
from onebit import FormatError
from onebit import bits as _bits
from onebit.convert.compare import engine_vs_simulation
from onebit.convert.simulate import avgpool_f32
from onebit.models import randomize_bn
from onebit.runtime import Session, format as fmt, netkernels as nk, reference_net as rn
from onebit.runtime.geometry import output_size

from tiny_models import forward_with_outputs


pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (k, s, p, h, w) with padding up to k // 2 where ceil_mode adds a window on at least one axis
GRID = [(k, s, p, h, w) for k, s, p, h, w in itertools.product((2, 3, 4), (2, 3), (0, 1), (3, 5, 7), (4, 6))
        if 2 * p <= k and h + 2 * p >= k and w + 2 * p >= k
        and (output_size(h, k, s, p, True), output_size(w, k, s, p, True)) != (output_size(h, k, s, p), output_size(w, k, s, p))]


def _nhwc(x):
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


def test_ceil_output_size_equals_torch():
    for k, s, p, h in itertools.product(range(1, 6), range(1, 5), range(3), range(1, 12)):
        if 2 * p <= k and h + 2 * p >= k:
            for ceil in (False, True):
                ref = F.max_pool2d(torch.zeros(1, 1, h, h), k, s, p, ceil_mode=ceil).shape[2]
                assert output_size(h, k, s, p, ceil) == ref, (k, s, p, h, ceil)
    assert len(GRID) >= 30


def test_ceil_pool_kernels_equal_torch(isa):
    g = torch.Generator().manual_seed(0)
    for k, s, p, h, w in GRID:
        q = torch.randint(-127, 128, (2, 5, h, w), generator=g).float()
        qi = _nhwc(q).astype(np.int8)
        msg = f"k={k} s={s} p={p} {h}x{w} {isa}"
        ref = F.max_pool2d(q, k, s, p, ceil_mode=True)
        assert np.array_equal(nk.maxpool2d_int8(qi, k, s, p, ceil_mode=True, isa=isa), _nhwc(ref)), msg
        xf = _nhwc(q * 0.37)
        assert np.array_equal(nk.maxpool2d_float(xf, k, s, p, ceil_mode=True, isa=isa),
                              _nhwc(F.max_pool2d(q * 0.37, k, s, p, ceil_mode=True))), msg
        sgn = torch.where(q < 0, -1.0, 1.0)
        ob = nk.maxpool2d_bits(_bits.pack(_nhwc(sgn)), k, s, p, ceil_mode=True, isa=isa)
        assert np.array_equal(_bits.unpack(ob, 5), _nhwc(F.max_pool2d(sgn, k, s, p, ceil_mode=True))), msg
        for cip in (True, False):
            # int8: s/d rounded half up, with PyTorch's divisor (the sum is exact in float64)
            avg = F.avg_pool2d(q.double(), k, s, p, ceil_mode=True, count_include_pad=cip)
            want = torch.floor(avg + 0.5).clamp(-127, 127)
            got = nk.avgpool2d_int8(qi, k, s, p, count_include_pad=cip, ceil_mode=True, isa=isa)
            assert np.array_equal(got, _nhwc(want).astype(np.int8)), f"{msg} cip={cip}"
            # float32: the engine's order == the simulation's, and PyTorch's to rounding
            gf = nk.avgpool2d_float(xf, k, s, p, count_include_pad=cip, ceil_mode=True, isa=isa)
            sim = avgpool_f32(q * 0.37, [k, k], [s, s], [p, p], cip, ceil_mode=True)
            assert np.array_equal(gf, _nhwc(sim)), f"{msg} cip={cip}"
            tf = F.avg_pool2d(q * 0.37, k, s, p, ceil_mode=True, count_include_pad=cip)
            np.testing.assert_allclose(gf, _nhwc(tf), rtol=1e-6, atol=1e-4)
            # the NumPy oracles (onebit.runtime.reference_net) agree bit for bit
            assert np.array_equal(rn.avgpool2d_int8(qi, k, s, p, cip, ceil_mode=True), got)
            assert np.array_equal(rn.avgpool2d_float(xf, k, s, p, cip, ceil_mode=True), gf)
        assert np.array_equal(rn.maxpool2d_int8(qi, k, s, p, ceil_mode=True), _nhwc(ref).astype(np.int8))
        assert np.array_equal(rn.maxpool2d_float(xf, k, s, p, ceil_mode=True),
                              nk.maxpool2d_float(xf, k, s, p, ceil_mode=True, isa=isa))
        assert np.array_equal(rn.maxpool2d_bits(_bits.pack(_nhwc(sgn)), k, s, p, ceil_mode=True), ob)


RAW = {"dataset": "raw", "shape": [11, 11, 2], "mean": [0.0, 0.0], "std": [1 / 255, 1 / 255]}


def _ceil_model(seed=0):
    """Exact first layer (raw uint8, weights in {-1, 0, 1}) and ceil-mode max pools on odd maps."""
    from onebit.nn import BinaryConv2d

    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(2, 9, 3, padding=1), nn.BatchNorm2d(9), nn.MaxPool2d(2, ceil_mode=True),
                      nn.Hardtanh(),  # 11 -> 6
                      BinaryConv2d(9, 70, 3, padding=1, bias=False), nn.BatchNorm2d(70),
                      nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),  # 6 -> 4 (floor: 3)
                      BinaryConv2d(70, 20, 3, bias=False), nn.BatchNorm2d(20),  # 4 -> 2
                      nn.Flatten(), nn.Linear(80, 5))
    with torch.no_grad():
        m[0].weight.copy_(torch.randint(-1, 2, m[0].weight.shape).float())
        m[0].weight[:, 0, 0, 0] = 1.0
        m[0].bias.uniform_(-20, 20)
    return randomize_bn(m, seed, input_shape=(2, 11, 11)).eval()


def test_ceil_mode_model_simulation_equals_float_model():
    m = _ceil_model(1)
    sim = cv.simulate(m, input_spec=RAW)
    pools = [op for op in sim.ops if op.type == "maxpool2d"]
    assert [op.attrs.get("ceil_mode") for op in pools] == [True, True]
    u = torch.randint(0, 256, (16, 11, 11, 2), dtype=torch.uint8)
    _, env = sim(u, return_values=True)
    ref, acts = forward_with_outputs(m, u.permute(0, 3, 1, 2).float())
    for op, layer in zip(pools, ("2", "6")):  # the pools' outputs are the signs of the model's
        assert torch.equal(env[op.output], torch.where(acts[layer] >= 0, 1.0, -1.0)), op.name
    assert torch.equal(env[sim.file.output_name].argmax(1), ref.argmax(1))


def test_ceil_mode_model_engine_equals_simulation(isa):
    sess = Session(cv.to_bytes(_ceil_model(2), input_spec=RAW), isa=isa)
    u = np.random.default_rng(3).integers(0, 256, (3, 11, 11, 2), dtype=np.uint8)
    engine_vs_simulation(sess, cv.simulate(sess.model), u)


def test_ceil_mode_attribute_only_where_it_changes_the_shape():
    m = _ceil_model(0)
    spec = dict(RAW, shape=[12, 12, 2])  # first pool 12 -> 6 in both modes; second 6 -> 4 (floor: 3)
    sim = cv.simulate(m, input_spec=spec)
    pools = [op.attrs.get("ceil_mode") for op in sim.ops if op.type == "maxpool2d"]
    assert pools == [None, True]


def _edit_graph(data: bytes, fn) -> bytes:
    """``data`` with ``fn`` applied to its graph metadata (tensors unchanged)."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    graph = json.loads(header["__metadata__"]["graph"])
    fn(graph)
    header["__metadata__"]["graph"] = json.dumps(graph)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data[8 + n:]


@pytest.mark.parametrize("value, match", [(1, "'ceil_mode' must be true or false"),
                                          ("yes", "'ceil_mode' must be true or false"),
                                          (False, "declared value")])
def test_ceil_mode_loader_validation(value, match):
    data = cv.to_bytes(_ceil_model(0), input_spec=RAW)
    fmt.loads(data)

    def edit(g):
        pool = [op for op in g["ops"] if op["type"] == "maxpool2d"][1]
        pool["attrs"]["ceil_mode"] = value

    with pytest.raises(FormatError, match=match):
        fmt.loads(_edit_graph(data, edit))
