"""Engine == integer simulation for every model of the zoo (random weights, calibrated BN),
on every ISA this CPU has, value by value (onebit.convert.compare.engine_vs_simulation).

Reduced widths / input sizes keep the whole file at a few seconds; the layer grammar (first
int8 conv, binary convs and dense layers, pools, global pooling, clip blocks, int8 and float
shortcuts, transitions) is the same as at full size.
"""
import numpy as np
import pytest
import torch

import onebit.convert as cv
import onebit.models as om
from onebit.convert.compare import engine_vs_simulation
from onebit.models import randomize_bn
from onebit.runtime import Session


# name -> list of (id, create() kwargs); every registered model must appear (checked below)
ZOO = {
    "mnist-small": [("w0.5", dict(width=0.5)), ("clip", dict(width=0.5, clip_block=True))],
    "cifar-binarynet": [("w0.25", dict(width=0.25)), ("clip", dict(width=0.25, clip_block=True))],
    "cifar-nin": [("w0.5", dict(width=0.5)), ("clip", dict(width=0.5, clip_block=True))],
    "cifar-alexnet": [("w0.25", dict(width=0.25)), ("clip", dict(width=0.25, clip_block=True))],
    "imagenette-small": [("w0.5-64px", dict(width=0.5, input_size=64)),
                         ("clip-96px", dict(width=0.5, input_size=96, clip_block=True))],
    # (32-px CIFAR-stem residual nets: tests/runtime/test_session.py)
    "birealnet18": [("imagenet64-int8", dict(width=0.25, stem="imagenet", input_size=64, clip_block=True)),
                    ("imagenet64-float", dict(width=0.25, stem="imagenet", input_size=64)),
                    # odd maps: the downsample shortcuts' AvgPool2d(2, ceil_mode=True) adds windows
                    ("cifar20-int8-ceil", dict(width=0.25, stem="cifar", input_size=20, clip_block=True)),
                    ("cifar20-float-ceil", dict(width=0.25, stem="cifar", input_size=20))],
    "quicknet-small": [("imagenet64-int8", dict(width=0.25, stem="imagenet", input_size=64, clip_block=True)),
                       ("imagenet64-float", dict(width=0.25, stem="imagenet", input_size=64)),
                       # odd maps: the transitions' MaxPool2d(2, ceil_mode=True) adds windows
                       ("cifar20-int8-ceil", dict(width=0.25, stem="cifar", input_size=20, clip_block=True)),
                       ("cifar20-float-ceil", dict(width=0.25, stem="cifar", input_size=20))],
}
CASES = [(name, cid, kw) for name, variants in ZOO.items() for cid, kw in variants]

_files = {}


def _export(name, cid, kw):
    """Random-weight export (BN calibrated on random input, then perturbed), cached per case."""
    key = (name, cid)
    if key not in _files:
        torch.manual_seed(0)
        model = om.create(name, **kw)
        randomize_bn(model, 0, input_shape=model.input_shape).eval()
        c, h, w = model.input_shape
        spec = {"dataset": "random", "shape": [h, w, c], "mean": [0.45] * c, "std": [0.25] * c}
        _files[key] = cv.to_bytes(model, input_spec=spec)
    return _files[key]


def test_zoo_every_registered_model_is_covered():
    assert set(ZOO) == set(om.list_models())


@pytest.mark.parametrize("name, cid, kw", CASES, ids=[f"{n}-{c}" for n, c, _ in CASES])
def test_zoo_engine_equals_simulation(name, cid, kw, isa):
    torch.set_num_threads(1)
    sess = Session(_export(name, cid, kw), isa=isa, threads=2)
    u = np.random.default_rng(7).integers(0, 256, (1,) + sess.input_shape, dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert set(diffs) == set(sess.model.values) - {"input"}  # every value was compared
    kinds = {sess.model.values[v].kind for v in diffs}
    assert "bits" in kinds and "f32" in kinds
    if kw.get("clip_block"):
        assert "int8" in kinds
    if cid.endswith("-ceil"):
        assert any(op.attrs.get("ceil_mode") for op in sess.model.ops)
