"""The fused executor (int8 residual adds and bitpacks run inside the int8 output stage of the
conv before them: src/cpp/onebit/runtime/fusion.h, docs/format.md §5 (d), (e)) equals the
unfused graph bit for bit: every zoo network as ``benchmarks/make_zoo_models.py`` writes it
(plain and ``--clip``) and the tiny fixtures, on every ISA this CPU has, 1 and 2 threads."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import onebit.convert as cv
from onebit.runtime import format as fmt
from onebit.runtime import Session
from onebit.runtime.engine import engine
from tiny_models import MNIST_SPEC, RAW_SPEC, exact_model, pruned, tiny_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import make_zoo_models  # noqa: E402

ISAS = ("scalar", "avx2", "avxvnni", "avx512", "neon")
ZOO = [(name, clip) for name in make_zoo_models.MODELS for clip in (False, True)]
RESIDUAL_CLIP = ("quicknet-small", "birealnet18")  # int8 adds between blocks

_files: dict = {}


def isa_or_skip(isa: str) -> str:
    if isa not in engine.supported_isas():
        pytest.skip(f"this CPU/build has no {isa} (supported: {', '.join(engine.supported_isas())})")
    return isa


def _zoo_file(name: str, clip: bool, tmp_path_factory):
    key = (name, clip)
    if key not in _files:
        with torch.no_grad():
            _files[key] = make_zoo_models.make(name, tmp_path_factory.mktemp("zoo"), clip=clip)
    return _files[key]


def _tiny(which: str) -> bytes:
    if which not in _files:
        _files[which] = {"tiny": lambda: cv.to_bytes(tiny_model(3), input_spec=MNIST_SPEC),
                         "tiny-clip": lambda: cv.to_bytes(tiny_model(3, clip=True), input_spec=MNIST_SPEC),
                         "exact": lambda: cv.to_bytes(exact_model(5), input_spec=RAW_SPEC),
                         "exact-clip": lambda: cv.to_bytes(exact_model(5, clip=True), input_spec=RAW_SPEC)}[which]()
    return _files[which]


def _pair(src, isa: str, threads: int, monkeypatch) -> tuple[Session, Session]:
    """(unfused, fused) sessions of one file."""
    monkeypatch.setenv("ONEBIT_FUSION", "0")
    plain = Session(src, isa=isa, threads=threads)
    monkeypatch.setenv("ONEBIT_FUSION", "1")
    fused = Session(src, isa=isa, threads=threads)
    monkeypatch.delenv("ONEBIT_FUSION")
    return plain, fused


def _assert_same_logits(plain: Session, fused: Session, n: int, seed: int = 0):
    x = np.random.default_rng(seed).integers(0, 256, (n,) + plain.input_shape, dtype=np.uint8)
    a, b = plain.run(x), fused.run(x)
    assert a.shape == b.shape
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), f"seed {seed}: fused logits differ"


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("name, clip", ZOO, ids=[f"{n}{'-clip' if c else ''}" for n, c in ZOO])
def test_fusion_zoo_equals_unfused(name, clip, isa_name, tmp_path_factory, monkeypatch):
    isa = isa_or_skip(isa_name)
    path = _zoo_file(name, clip, tmp_path_factory)
    # scalar at 224 px takes about a second per image: one image, the 2-thread split only
    for threads in ((2,) if isa == "scalar" else (1, 2)):
        plain, fused = _pair(path, isa, threads, monkeypatch)
        assert plain.fused_ops == {}
        _assert_same_logits(plain, fused, 1 if isa == "scalar" else 2)
    if clip and name in RESIDUAL_CLIP:
        types = {op.name: op.type for op in fused.model.ops}
        adds = {n for n, t in types.items() if t == "add"}
        assert adds <= set(fused.fused_ops), "every int8 residual add runs inside a conv"
        assert any(types[n] == "bitpack" for n in fused.fused_ops)
        hosts = {types[h] for h in fused.fused_ops.values()}
        assert {"bconv2d", "conv2d_i8"} <= hosts  # binary and int8 convs both host fused ops
        if name == "birealnet18":  # the shortcut conv runs after the block's binary conv
            assert {types[fused.fused_ops[a]] for a in adds} == {"bconv2d", "conv2d_i8"}


def _with_add_multipliers(path, ma: int, mb: int, shift: int) -> bytes:
    """The file with every int8 add's fixed point replaced (unequal, signed operand scales)."""
    mf = fmt.load(path)
    for op in mf.ops:
        if op.type == "add" and "ma" in op.attrs:
            op.attrs.update(ma=ma, mb=mb, shift=shift)
    graph = {"input": mf.input_name, "output": mf.output_name,
             "values": {k: v.to_json() for k, v in mf.values.items()}, "ops": [op.to_json() for op in mf.ops]}
    return fmt.dumps({k: mf.metadata[k] for k in ("producer", "input", "output")}, graph, mf.tensors)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("name", RESIDUAL_CLIP)
def test_fusion_unequal_add_scales_equal_unfused(name, isa_name, tmp_path_factory, monkeypatch):
    """The add's operands in either order (the fused conv is its first or second input), with
    different, signed multipliers and saturation: the operand mapping of the fused add counts."""
    isa = isa_or_skip(isa_name)
    data = _with_add_multipliers(_zoo_file(name, True, tmp_path_factory), 5_000_001, -3_000_000, 22)
    plain, fused = _pair(data, isa, 2, monkeypatch)
    assert {op.name for op in fused.model.ops if op.type == "add"} <= set(fused.fused_ops)
    _assert_same_logits(plain, fused, 1)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("which", ["tiny", "tiny-clip", "exact", "exact-clip"])
def test_fusion_tiny_equals_unfused(which, isa_name, monkeypatch):
    isa = isa_or_skip(isa_name)
    for threads in (1, 2):
        plain, fused = _pair(_tiny(which), isa, threads, monkeypatch)
        for seed in range(3):
            _assert_same_logits(plain, fused, 3, seed)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("granularity", ["weight", "word"])
def test_fusion_pruned_residual_equals_unfused(granularity, isa_name, monkeypatch):
    """Pruned binary convs (the masked kernels) with int8 adds and bitpacks fused after them."""
    import onebit.models as om
    from onebit.models import randomize_bn

    isa = isa_or_skip(isa_name)
    key = ("pruned", granularity)
    if key not in _files:
        torch.manual_seed(0)
        m = om.create("quicknet-small", width=0.25, stem="imagenet", input_size=64, clip_block=True)
        randomize_bn(m, 0, input_shape=m.input_shape)
        m = pruned(m.eval(), granularity, 0.4, input_size=m.input_shape)
        spec = {"dataset": "random", "shape": [64, 64, 3], "mean": [0.45] * 3, "std": [0.25] * 3}
        _files[key] = cv.to_bytes(m, input_spec=spec)
    for threads in (1, 2):
        plain, fused = _pair(_files[key], isa, threads, monkeypatch)
        assert any(t == "add" for t in (op.type for op in fused.model.ops if op.name in fused.fused_ops))
        for seed in range(2):
            _assert_same_logits(plain, fused, 2, seed)


def test_fusion_profile_reports_fused_ops_in_their_host(tmp_path_factory, monkeypatch):
    path = _zoo_file("quicknet-small", True, tmp_path_factory)
    _, fused = _pair(path, "scalar", 1, monkeypatch)
    x = np.zeros((1,) + fused.input_shape, np.uint8)
    prof = {r["op"]: r for r in fused.profile(x, repeats=1)}
    for op, host in fused.fused_ops.items():
        assert prof[op]["median_ms"] == 0.0 and prof[op]["fused_into"] == host
        assert prof[host]["median_ms"] > 0.0
