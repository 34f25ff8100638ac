"""A BatchNorm that folds into no producer's output stage is the ``affine_f32`` op: BinaryDenseNet's
dataflow (a BatchNorm on a value shared by a binary conv and a concatenation, a BatchNorm on a
concatenation before a max pool) and BinaryResNetE18's stem (conv -> BN -> ReLU -> max pool -> BN,
shared by a binary conv and an add). Written as Keras ``.h5`` files with h5py: engine == integer
simulation bit for bit on every ISA, the float-boundary engine == the imported float module to
float32 rounding; both loaders reject malformed ``affine_f32`` ops alike."""
import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("h5py")

import larq_h5_writer as K  # noqa: E402
from file_edits import both_reject, edit_op  # noqa: E402

import onebit.convert as cv  # noqa: E402
from onebit.convert.compare import engine_vs_simulation  # noqa: E402
from onebit.convert.larq import from_larq  # noqa: E402
from onebit.runtime import Session  # noqa: E402
from onebit.runtime import format as fmt  # noqa: E402

RNG = np.random.default_rng(5)
SPEC = K.SPEC16


def _bn(c, negative=0):
    """BatchNorm weights; ``negative`` channels with a negative scale (gamma < 0)."""
    gamma = RNG.uniform(0.5, 1.5, c)
    gamma[:negative] *= -1
    return [("gamma", gamma), ("beta", RNG.normal(0, 0.3, c)),
            ("moving_mean", RNG.normal(0, 0.3, c)), ("moving_variance", RNG.uniform(0.5, 2, c))]


def _bnl(name, src):
    return K.layer("BatchNormalization", name, [src], axis=[3], epsilon=1e-5)


def _qconv(name, src, filters, k=3, s=1):
    return K.layer("QuantConv2D", name, [src], filters=filters, kernel_size=[k, k], strides=[s, s],
                   padding="same", use_bias=False, activation="linear", pad_values=0.0,
                   input_quantizer="ste_sign", kernel_quantizer="ste_sign")


def _conv(name, src, filters, k, s=1, padding="same"):
    return K.layer("Conv2D", name, [src], filters=filters, kernel_size=[k, k], strides=[s, s], padding=padding,
                   use_bias=False, activation="linear")


def _stem(L, W, c):
    """Larq Zoo's stem (BinaryDenseNet, BinaryResNetE18): conv 7x7 s2 -> BN -> ReLU -> max pool 3 s2."""
    L += [K.input_layer("in", (16, 16, 3)), _conv("stem", "in", c, 7, 2), _bnl("stem_bn", "stem"),
          K.layer("Activation", "stem_relu", ["stem_bn"], activation="relu"),
          K.layer("MaxPooling2D", "stem_pool", ["stem_relu"], pool_size=[3, 3], strides=[2, 2], padding="same")]
    W.update(stem=[("kernel", RNG.normal(0, 0.3, (7, 7, 3, c)))], stem_bn=_bn(c))


def _head(L, W, src, c):
    L += [K.layer("GlobalAveragePooling2D", "gap", [src]),
          K.layer("Dense", "head", ["gap"], units=10, use_bias=True, activation="linear")]
    W["head"] = [("kernel", RNG.normal(0, 0.3, (c, 10))), ("bias", RNG.normal(0, 0.1, 10))]


def densenet_like(tmp_path):
    """BinaryDenseNet's dataflow: stem; dense blocks (BN of the block input -> binary conv,
    concatenated to the input); transition BN -> max pool -> ReLU -> 1x1 conv; one more dense
    block; BN -> ReLU -> global pool -> dense."""
    L, W, g = [], {}, 8
    _stem(L, W, 16)
    x, c = "stem_pool", 16
    for i in range(3):
        if i == 2:  # transition
            L += [_bnl("tr_bn", x), K.layer("MaxPooling2D", "tr_pool", ["tr_bn"], pool_size=[2, 2], strides=[2, 2],
                                            padding="valid"),
                  K.layer("Activation", "tr_relu", ["tr_pool"], activation="relu"), _conv("tr_conv", "tr_relu", 16, 1)]
            W.update(tr_bn=_bn(c, negative=3), tr_conv=[("kernel", RNG.normal(0, 0.3, (1, 1, c, 16)))])
            x, c = "tr_conv", 16
        L += [_bnl(f"bn{i}", x), _qconv(f"q{i}", f"bn{i}", g), K.layer("Concatenate", f"cat{i}", [x, f"q{i}"], axis=-1)]
        W.update({f"bn{i}": _bn(c, negative=2), f"q{i}": [("kernel", RNG.normal(0, 1, (3, 3, c, g)))]})
        x, c = f"cat{i}", c + g
    L += [_bnl("final_bn", x), K.layer("Activation", "final_relu", ["final_bn"], activation="relu")]
    W["final_bn"] = _bn(c)
    _head(L, W, "final_relu", c)
    return K.write(tmp_path / "densenet_like.h5", K.functional(L, "in", "head"), W)


def e18_like(tmp_path, negative=3):
    """BinaryResNetE18's dataflow: stem + BN after the pool (``negative`` channels of negative
    scale: the pool does not commute with it), a residual block (binary conv -> BN, added to its
    input), a downsampling block (average pool -> 1x1 conv -> BN on the shortcut), ReLU, head."""
    L, W = [], {}
    _stem(L, W, 16)
    L += [_bnl("stem_bn2", "stem_pool"),
          _qconv("q1", "stem_bn2", 16), _bnl("bn1", "q1"), K.layer("Add", "add1", ["bn1", "stem_bn2"]),
          _qconv("q2", "add1", 32, s=2), _bnl("bn2", "q2"),
          K.layer("AveragePooling2D", "avg", ["add1"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
          _conv("proj", "avg", 32, 1, padding="valid"), _bnl("proj_bn", "proj"),
          K.layer("Add", "add2", ["bn2", "proj_bn"]), K.layer("Activation", "relu", ["add2"], activation="relu")]
    W.update(stem_bn2=_bn(16, negative), q1=[("kernel", RNG.normal(0, 1, (3, 3, 16, 16)))], bn1=_bn(16),
             q2=[("kernel", RNG.normal(0, 1, (3, 3, 16, 32)))], bn2=_bn(32),
             proj=[("kernel", RNG.normal(0, 0.3, (1, 1, 16, 32)))], proj_bn=_bn(32))
    _head(L, W, "relu", 32)
    return K.write(tmp_path / "e18_like.h5", K.functional(L, "in", "head"), W)


MODELS = {"densenet": densenet_like, "e18": e18_like}


def _inputs(n=32):
    return RNG.integers(0, 256, (n, *SPEC["shape"]), dtype=np.uint8)


def _module_logits(m, u):
    return K.module_logits(m, u, SPEC)


@pytest.mark.parametrize("float_boundary", [False, True], ids=["int8-first", "float-boundary"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_engine_equals_simulation(tmp_path, model, float_boundary, isa):
    m = from_larq(MODELS[model](tmp_path))
    data = cv.to_bytes(m, input_spec=SPEC, float_boundary=float_boundary)
    types = [op.type for op in fmt.loads(data).ops]
    assert types.count("affine_f32") == {"densenet": 5, "e18": 1}[model], types
    sess = Session(data, isa=isa, threads=2)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), _inputs(8))
    assert max(diffs.values()) == 0.0, diffs


@pytest.mark.parametrize("model", sorted(MODELS))
def test_float_boundary_engine_follows_the_module(tmp_path, model):
    """Every non-binary layer in float32: the engine is the float module to rounding (a sign that
    rounding flips would show as a large difference)."""
    m = from_larq(MODELS[model](tmp_path))
    u = _inputs(32)
    got = Session(cv.to_bytes(m, input_spec=SPEC, float_boundary=True)).run(u)
    ref = _module_logits(m, u)
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), (np.abs(got - ref).max(), np.abs(ref).max())


@pytest.mark.parametrize("model", sorted(MODELS))
def test_int8_first_layer_follows_the_module(tmp_path, model):
    """The default mode's one approximation is the int8 first layer: the input-dependent part of
    the logits (minus their batch mean) follows the module's."""
    m = from_larq(MODELS[model](tmp_path))
    u = _inputs(64)
    got, ref = Session(cv.to_bytes(m, input_spec=SPEC)).run(u), _module_logits(m, u)
    gc, rc = got - got.mean(0), ref - ref.mean(0)
    assert np.corrcoef(gc.ravel(), rc.ravel())[0, 1] > 0.95
    assert (gc.argmax(1) == rc.argmax(1)).mean() >= 0.75


def test_import_cli_exports_densenet_and_e18(tmp_path):
    from click.testing import CliRunner

    from onebit.cli import main

    for name, make in MODELS.items():
        out = tmp_path / f"{name}.onebit"
        r = CliRunner().invoke(main, ["import", str(make(tmp_path)), "-o", str(out)])
        assert r.exit_code == 0, r.output
        assert "affine_f32" in [op.type for op in fmt.load(out).ops]


def test_pool_then_batchnorm_after_relu_in_a_torch_chain(isa):
    """The PyTorch converter, same order in a chain: conv -> BN -> ReLU -> max pool -> BN (negative
    scales) -> float head. The pool runs on float32 and the second BN is affine_f32, in both modes
    (with the float first layer too: its BN after the pool is not dropped)."""
    torch.manual_seed(0)
    bn2 = nn.BatchNorm2d(8)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), bn2,
                      nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    with torch.no_grad():
        bn2.weight.copy_(torch.linspace(-1.5, 1.5, 8))
        bn2.bias.normal_()
        bn2.running_mean.normal_()
    u = _inputs(8)
    for fb in (False, True):
        data = cv.to_bytes(m, input_spec=SPEC, float_boundary=fb)
        assert [op.type for op in fmt.loads(data).ops].count("affine_f32") == 1
        sess = Session(data, isa=isa)
        assert max(engine_vs_simulation(sess, cv.simulate(sess.model), u).values()) == 0.0
        if fb:
            ref = _module_logits_torch(m, u)
            assert np.abs(sess.run(u) - ref).max() <= 1e-4 * np.abs(ref).max()


def _module_logits_torch(m, u):
    x = (torch.from_numpy(u).permute(0, 3, 1, 2).double() / 255 - torch.tensor(SPEC["mean"]).view(1, 3, 1, 1)) \
        / torch.tensor(SPEC["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        return m(x.float()).double().numpy()


# -- malformed affine_f32 ops --------------------------------------------------------------------

def test_malformed_affine_ops_rejected_by_both_loaders(tmp_path):
    data = cv.to_bytes(from_larq(e18_like(tmp_path)), input_spec=SPEC)

    def edited(fn):
        return edit_op(data, "affine_f32", fn)

    def scale_shape(op, graph, header):
        header[op["tensors"]["scale"]]["shape"] = [4, 4]
    both_reject(edited(scale_shape), "scale")

    def missing_bias(op, graph, header):
        del op["tensors"]["bias"]
    both_reject(edited(missing_bias), "bias")

    def image_input(op, graph, header):  # the uint8 image is not float32
        op["inputs"] = [graph["input"]]
    both_reject(edited(image_input), "float32")

    def scale_dtype(op, graph, header):  # same bytes, read as int32
        header[op["tensors"]["scale"]]["dtype"] = "I32"
    both_reject(edited(scale_dtype), "scale")
