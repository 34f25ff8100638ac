"""Export of PyTorch models whose forward splits and joins branches (``y = f(x) + x``): engine ==
integer simulation bit for bit, engine ~= the float model; chains keep the chain converter."""
import numpy as np
import pytest
import torch
from torch import nn

import onebit.convert as cv
from onebit.convert import ConversionError, dag
from onebit.convert import graph as chain
from onebit.convert.compare import engine_vs_simulation
from onebit.models import randomize_bn
from onebit.nn import BinaryConv2d, ClipBlock

from tiny_models import MNIST_SPEC, tiny_model

RAW = {"dataset": "raw", "shape": [12, 12, 3], "mean": [0.0] * 3, "std": [1 / 255] * 3}


class SplitJoin(nn.Module):
    """stem -> x; x + bn1(b1(x)) -> y; y + bn2(b2(y)) -> relu -> global pool -> fc. With ``clip``
    every real value passes a clip block (int8 data flow, int8 adds)."""

    def __init__(self, clip: bool = False, exact: bool = True):
        super().__init__()
        torch.manual_seed(0)
        self.clip = clip
        self.conv, self.bn = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.b1, self.bn1 = BinaryConv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.b2, self.bn2 = BinaryConv2d(16, 16, 3, padding=1, stride=1), nn.BatchNorm2d(16)
        self.c0, self.c1, self.c2, self.c3 = (ClipBlock(4.0) for _ in range(4)) if clip else (nn.Identity(),) * 4
        self.c4 = ClipBlock(4.0) if clip else nn.Identity()
        self.relu, self.pool, self.fc = nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Linear(16, 10)
        if exact:
            with torch.no_grad():
                self.conv.weight.copy_(torch.randint(-1, 2, self.conv.weight.shape).float())

    def forward(self, x):
        x = self.c0(self.bn(self.conv(x)))
        y = self.c2(self.c1(self.bn1(self.b1(x))) + x)
        z = self.c4(y + self.c3(self.bn2(self.b2(y))))
        if not self.clip:
            z = self.relu(z)
        return self.fc(self.pool(z).flatten(1))


def _run(tmp_path, m, n=16):
    from onebit.runtime import Session

    randomize_bn(m, 0, input_shape=(3, 12, 12)).eval()
    path = cv.export(m, tmp_path / "m.onebit", input_spec=RAW)
    sess = Session(path)
    u = np.random.default_rng(0).integers(0, 256, (n, 12, 12, 3), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(path), u)
    with torch.no_grad():
        ref = m(torch.from_numpy(u).permute(0, 3, 1, 2).float()).double().numpy()
    return sess, sess.run(u), ref, diffs


def test_float_split_join_equals_float_model(tmp_path):
    sess, got, ref, diffs = _run(tmp_path, SplitJoin())
    assert max(diffs.values()) == 0.0
    types = [op.type for op in sess.model.ops]
    assert types.count("add") == 2 and types.count("bitpack") == 2 and "clamp_f32" in types
    assert all(sess.model.values[op.output].kind == "f32" for op in sess.model.ops if op.type == "add")
    # exact int8 stem (integer taps, raw pixels), float32 elsewhere: float rounding only
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


def test_int8_split_join_uses_the_int8_add(tmp_path):
    sess, got, ref, diffs = _run(tmp_path, SplitJoin(clip=True), n=32)
    assert max(diffs.values()) == 0.0
    adds = [op for op in sess.model.ops if op.type == "add"]
    assert len(adds) == 2 and all(sess.model.values[op.output].kind == "int8" and op.attrs["ma"] > 0 for op in adds)
    assert "dequantize" not in [op.type for op in sess.model.ops[:-2]]
    # int8 rounding (half up in the engine, half even in torch) moves a few values by one step
    gc, rc = got - got.mean(0), ref - ref.mean(0)
    assert np.corrcoef(gc.ravel(), rc.ravel())[0, 1] > 0.99


def test_chain_model_goes_to_the_chain_converter():
    m = tiny_model(0, clip=True).eval()
    nodes, out = dag.trace_graph(m, (1, 1, 28, 28))
    assert dag.is_chain(nodes, out)
    ops_dag, _, t_dag = dag.build(m, [28, 28, 1], MNIST_SPEC["mean"], MNIST_SPEC["std"])
    ops_chain, _, t_chain = chain.build(m, [28, 28, 1], MNIST_SPEC["mean"], MNIST_SPEC["std"])
    assert [o.to_json() for o in ops_dag] == [o.to_json() for o in ops_chain]
    assert all(np.array_equal(t_dag[k], t_chain[k]) for k in t_chain)


class _Branchy(nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.b, self.bnb = BinaryConv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 4)

    def forward(self, x):
        x = self.bn(self.conv(x))
        y = self.bnb(self.b(x))
        if self.op == "tanh":
            z = torch.tanh(y) + x
        elif self.op == "mul":
            z = y * x
        else:
            z = torch.cat([y, x], dim=1)[:, :8]
        return self.fc(self.pool(z).flatten(1))


@pytest.mark.parametrize("op,msg", [("tanh", r"torch function tanh between layers \(node 'tanh#\d+', reading 'bnb'\)"),
                                    ("mul", r"torch function (__)?mul(__)? between layers.*reading 'bnb', 'bn'"),
                                    ("cat", r"torch function __getitem__ between layers")])
def test_unsupported_join_or_function_is_named(op, msg):
    with pytest.raises(ConversionError, match=msg):
        cv.to_bytes(_Branchy(op).eval(), input_spec=RAW)


class TwoReaders(nn.Module):
    """A binary conv's output read by two binary convs (its stage: bits, shared) whose outputs
    are added (float)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv, self.bn = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.b1, self.bn1 = BinaryConv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.b2, self.bn2 = BinaryConv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.b3, self.bn3 = BinaryConv2d(16, 16, 1), nn.BatchNorm2d(16)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 10)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randint(-1, 2, self.conv.weight.shape).float())

    def forward(self, x):
        a = self.bn1(self.b1(self.bn(self.conv(x))))
        return self.fc(self.pool(self.bn2(self.b2(a)) + self.bn3(self.b3(a))).flatten(1))


def test_value_read_by_binary_layers_only_is_one_bits_stage(tmp_path):
    sess, got, ref, diffs = _run(tmp_path, TwoReaders())
    assert max(diffs.values()) == 0.0
    mf = sess.model
    assert mf.values["b1"].kind == "bits" and "bitpack" not in [op.type for op in mf.ops]
    assert sum("b1" in op.inputs for op in mf.ops) == 2
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
