"""Larq Zoo architectures (onebit/convert/larq/zoo, no TensorFlow) with random weights: their
padding (one-padding, Keras "same" on even inputs) imports as onebit layers that export, and
XNOR-Net and BinaryAlexNet (uneven 11x11 first layer, conv -> max pool -> BN; BinaryAlexNet's
binary-weight first layer and Reshape + 1x1 conv dense layers) export to files the engine runs
exactly as the integer simulation."""
import numpy as np
import pytest
import torch

from onebit.convert.larq import layers as L
from onebit.convert.larq import zoo
from onebit.convert.larq.build import build
from onebit.convert.larq.check import strip_softmax, unsupported
from onebit.convert.larq.h5file import KerasFile
from onebit.nn import BinaryConv2d

SPEC = {"shape": [224, 224, 3], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "dataset": None}


def random_zoo_model(name, monkeypatch, seed=0):
    """Larq Zoo architecture ``name`` with random weights of the shapes its layers ask for
    (BN statistics non-degenerate, gammas of both signs)."""
    rng = np.random.default_rng(seed)
    ask = L.Ctx.w

    def w(self, key, shape=None, optional=False):
        if key not in self.weights and shape is not None:
            if key == "moving_variance":
                self.weights[key] = rng.uniform(0.5, 2.0, shape)
            elif key == "gamma":
                self.weights[key] = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
            elif key in ("beta", "moving_mean"):
                self.weights[key] = rng.normal(0, 0.5, shape)
            else:
                self.weights[key] = rng.normal(0, 0.1, shape)
        return ask(self, key, shape, optional)

    monkeypatch.setattr(L.Ctx, "w", w)
    m = build(KerasFile(name, zoo.architecture(name), {}), None, zoo.identity_lambdas(name))
    monkeypatch.setattr(L.Ctx, "w", ask)
    strip_softmax(m)
    return m


@pytest.mark.parametrize("name", ["QuickNetSmall", "BiRealNet"])
def test_zoo_padding_imports_as_exportable_layers(name, monkeypatch):
    m = random_zoo_model(name, monkeypatch)
    assert not [why for _, why in unsupported(m) if "padding" in why]
    convs = [mod for mod in m.modules() if isinstance(mod, BinaryConv2d) and mod.kernel_size == (3, 3)
             and mod.input_precision == 1]
    if name == "QuickNetSmall":  # pad_values=1 on every 3x3 binary conv
        assert convs and all(c.pad_value == 1 for c in convs)
    else:  # pad_values=0; stride 2 on even maps pads only after the input
        s2 = [c for c in convs if c.stride == (2, 2)]
        assert s2 and all(c.pad_value == 0 and c.padding == (0, 0) and c.padding_end == (1, 1) for c in s2)
    pools = [mod for mod in m.modules() if isinstance(mod, torch.nn.MaxPool2d)]
    if name == "BiRealNet":  # 3x3 stride-2 "same" pool on 112: windows of ceil_mode
        assert any(p.ceil_mode for p in pools)


@pytest.mark.parametrize("name", ["XNORNet", "BinaryAlexNet"])
def test_zoo_chain_models_export_and_engine_equals_simulation(name, monkeypatch):
    import onebit.convert as cv
    from onebit.convert.compare import engine_vs_simulation
    from onebit.runtime import Session

    m = random_zoo_model(name, monkeypatch)
    assert unsupported(m) == []
    data = cv.to_bytes(m, input_spec=SPEC)
    sess = Session(data, threads=2)
    ops = {op.name: op for op in sess.model.ops}
    first = next(op for op in ops.values() if op.type == "conv2d_u8")  # 11x11 stride 4 "same" on 224
    assert first.attrs["padding"] == [3, 3] and first.attrs["padding_end"] == [4, 4]
    u = np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert set(diffs) == set(sess.model.values) - {"input"}


def test_real_to_binary_net_exports_and_engine_equals_simulation(monkeypatch):
    """RealToBinaryNet's architecture (its ``*_out`` Lambdas declared by the zoo): every layer
    exports, the scaled blocks' gates become sigmoid_f32 / mul_channels_f32 and the engine runs
    the file exactly as the integer simulation."""
    import onebit.convert as cv
    from onebit.convert.compare import engine_vs_simulation
    from onebit.runtime import Session

    m = random_zoo_model("RealToBinaryNet", monkeypatch)
    assert unsupported(m) == []
    data = cv.to_bytes(m, input_spec=SPEC)
    sess = Session(data, threads=2)
    types = [op.type for op in sess.model.ops]
    assert types.count("mul_channels_f32") == types.count("sigmoid_f32") == types.count("bconv2d") == 16
    u = np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert set(diffs) == set(sess.model.values) - {"input"}


def _r2b_config(edit=None):
    import copy

    config = copy.deepcopy(zoo.architecture("RealToBinaryNet"))
    for ly in config["config"]["layers"]:
        if ly["class_name"] == "Lambda" and edit:
            edit(ly["config"])
    return config


def test_real_to_binary_net_identity_lambdas_are_read_from_their_data():
    """A file's own RealToBinaryNet Lambdas (larq_zoo's module, the architecture's names, no
    closure) return their input: the build gets past them (and stops at the missing weights)."""
    from onebit.convert.larq import LarqImportError

    with pytest.raises(LarqImportError, match=r"missing weight"):
        build(KerasFile("RealToBinaryNet", _r2b_config(), {}), None, ())


@pytest.mark.parametrize("edit", [lambda c: c.update(module="my_models.blocks"),
                                  lambda c: c.update(function=[c["function"][0], None, [3]])],
                         ids=["other-module", "with-closure"])
def test_real_to_binary_net_lambdas_of_other_code_are_refused(edit):
    """The same names from another module, or a Lambda with a closure, stay bytecode (refused
    unless declared)."""
    from onebit.convert.larq import LarqImportError

    with pytest.raises(LarqImportError, match=r"r2b_bnn_block_2_out.*bytecode"):
        build(KerasFile("RealToBinaryNet", _r2b_config(edit), {}), None, ())
