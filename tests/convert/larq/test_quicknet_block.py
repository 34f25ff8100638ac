"""QuickNet's dataflow written as a Larq ``.h5`` (no TensorFlow): a stem whose QuantConv2D and
QuantDepthwiseConv2D carry no quantizers (float layers) with Keras "same" padding at stride 2 (one
more row / column after the input), residual blocks ``binary conv (ReLU) -> BatchNorm -> add``,
and a transition ``ReLU -> max pool -> DepthwiseConv2D stride 2 -> 1x1 conv -> BatchNorm``. The
export uses ``dwconv2d_f32`` with ``padding_end`` and ``clamp_f32`` with per-channel bounds (the
BatchNorm after the ReLU); the engine equals the integer simulation bit for bit in both precision
modes and, with float boundaries, follows the imported float module to rounding."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("h5py")

import larq_h5_writer as K  # noqa: E402
from file_edits import both_reject, edit_op  # noqa: E402

import onebit.convert as cv  # noqa: E402
from onebit.convert import ConversionError  # noqa: E402
from onebit.convert.compare import engine_vs_simulation  # noqa: E402
from onebit.convert.larq import from_larq  # noqa: E402
from onebit.runtime import Session  # noqa: E402
from onebit.runtime import format as fmt  # noqa: E402

RNG = np.random.default_rng(12)
SPEC = {"dataset": None, "shape": [16, 16, 3], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _bn(c, gamma=None):
    g = RNG.uniform(0.5, 1.5, c) if gamma is None else gamma
    return [("gamma", g), ("beta", RNG.normal(0, 0.3, c)), ("moving_mean", RNG.normal(0, 0.3, c)),
            ("moving_variance", RNG.uniform(0.5, 2, c))]


def _float_qconv(name, src, filters, k, s, padding):
    return K.layer("QuantConv2D", name, [src], filters=filters, kernel_size=[k, k], strides=[s, s], padding=padding,
                   use_bias=False, activation="linear", pad_values=0.0, input_quantizer=None, kernel_quantizer=None)


def _bnl(name, src):
    return K.layer("BatchNormalization", name, [src], axis=[3], epsilon=1e-5)


def quicknet_like(tmp_path, binary_after_bn1=False):
    """16x16x3 -> stem (8x8 -> 4x4) -> residual block -> transition (4x4 -> 2x2) -> logits.
    ``binary_after_bn1``: a binary conv reads the residual block's BatchNorm instead of the add."""
    L = [K.input_layer("in", (16, 16, 3)),
         _float_qconv("stem", "in", 8, 3, 2, "same"), _bnl("stem_bn", "stem"),
         K.layer("Activation", "stem_relu", ["stem_bn"], activation="relu"),
         K.layer("QuantDepthwiseConv2D", "stem_dw", ["stem_relu"], kernel_size=[3, 3], strides=[2, 2],
                 padding="same", depth_multiplier=1, use_bias=False, activation="linear", pad_values=0.0,
                 input_quantizer=None, depthwise_quantizer=None),
         _bnl("stem_dw_bn", "stem_dw"), _float_qconv("stem_pw", "stem_dw_bn", 16, 1, 1, "valid"),
         _bnl("stem_pw_bn", "stem_pw"), _binary_conv("q1", "stem_pw_bn", "relu"), _bnl("bn1", "q1")]
    # bn1's scale: positive, negative and zero channels (a clamp from below, from above, a constant)
    g1 = RNG.uniform(0.5, 1.5, 16) * np.where(np.arange(16) % 3 == 1, -1, 1)
    g1[5] = 0.0
    W = {"stem": [("kernel", RNG.normal(0, 0.3, (3, 3, 3, 8)))], "stem_bn": _bn(8),
         "stem_dw": [("depthwise_kernel", RNG.normal(0, 0.5, (3, 3, 8, 1)))], "stem_dw_bn": _bn(8),
         "stem_pw": [("kernel", RNG.normal(0, 0.5, (1, 1, 8, 16)))], "stem_pw_bn": _bn(16),
         "q1": [("kernel", RNG.normal(0, 1, (3, 3, 16, 16)))], "bn1": _bn(16, g1)}
    if binary_after_bn1:
        L += [_binary_conv("q2", "bn1", "linear"), _bnl("bn2", "q2"), K.layer("Add", "add2", ["bn2", "stem_pw_bn"]),
              K.layer("GlobalAveragePooling2D", "gap", ["add2"])]
        W.update(q2=[("kernel", RNG.normal(0, 1, (3, 3, 16, 16)))], bn2=_bn(16))
        head_in = 16
    else:
        L += [K.layer("Add", "add1", ["bn1", "stem_pw_bn"]),
              K.layer("Activation", "relu", ["add1"], activation="relu"),
              K.layer("MaxPooling2D", "pool", ["relu"], pool_size=[2, 2], strides=[1, 1], padding="valid"),
              K.layer("DepthwiseConv2D", "dw", ["pool"], kernel_size=[3, 3], strides=[2, 2], padding="same",
                      depth_multiplier=1, use_bias=False, activation="linear"),
              K.layer("Conv2D", "pw", ["dw"], filters=32, kernel_size=[1, 1], strides=[1, 1], padding="valid",
                      use_bias=False, activation="linear"),
              _bnl("pw_bn", "pw"), K.layer("GlobalAveragePooling2D", "gap", ["pw_bn"])]
        W.update(dw=[("depthwise_kernel", RNG.normal(0, 0.5, (3, 3, 16, 1)))],
                 pw=[("kernel", RNG.normal(0, 0.3, (1, 1, 16, 32)))], pw_bn=_bn(32))
        head_in = 32
    L.append(K.layer("Dense", "head", ["gap"], units=10, use_bias=True, activation="linear"))
    W["head"] = [("kernel", RNG.normal(0, 0.3, (head_in, 10))), ("bias", RNG.normal(0, 0.1, 10))]
    return K.write(tmp_path / "quicknet_like.h5", K.functional(L, "in", "head"), W)


def _binary_conv(name, src, activation):
    return K.layer("QuantConv2D", name, [src], filters=16, kernel_size=[3, 3], strides=[1, 1], padding="same",
                   use_bias=False, activation=activation, pad_values=1.0, input_quantizer="ste_sign",
                   kernel_quantizer="ste_sign")


def _images(n):
    u = RNG.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    x = (u / 255.0 - np.array(SPEC["mean"])) / np.array(SPEC["std"])
    return u, torch.from_numpy(x).float()


@pytest.mark.parametrize("float_boundary", [False, True], ids=["integer", "float-boundary"])
def test_quicknet_block_engine_equals_simulation(tmp_path, float_boundary):
    m = from_larq(quicknet_like(tmp_path))
    out = cv.export(m, tmp_path / "q.onebit", input_spec=SPEC, float_boundary=float_boundary)
    mf = fmt.load(out)
    types = [op.type for op in mf.ops]
    assert types[0] == ("conv2d_f32" if float_boundary else "conv2d_u8")
    assert mf.ops[0].attrs["padding"] == [0, 0] and mf.ops[0].attrs["padding_end"] == [1, 1]
    dws = [op for op in mf.ops if op.type == "dwconv2d_f32"]
    assert len(dws) == 2 and dws[0].attrs["padding_end"] == [1, 1] and "padding_end" not in dws[1].attrs
    assert [mf.values[op.output].shape for op in dws] == [(4, 4, 8), (2, 2, 16)]
    clamps = [op for op in mf.ops if op.type == "clamp_f32" and "lower" in op.tensors]
    assert len(clamps) == 1 and mf.ops[types.index("clamp_f32", types.index("bconv2d"))] is clamps[0]
    u, _ = _images(8)
    for isa in ("scalar", None):
        diffs = engine_vs_simulation(Session(out, isa=isa), cv.simulate(str(out)), u)
        assert max(diffs.values()) == 0.0


def test_quicknet_block_float_boundary_follows_the_module(tmp_path):
    """Float boundaries: every non-binary layer in float32, so the engine is the module to float32
    rounding (a sign flipped by rounding would show as a large difference)."""
    m = from_larq(quicknet_like(tmp_path))
    out = cv.export(m, tmp_path / "q.onebit", input_spec=SPEC, float_boundary=True)
    u, x = _images(32)
    got = Session(out).run(u).astype(np.float64)
    with torch.no_grad():
        want = m.forward_nhwc(x).double().numpy()
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-4 * scale, (np.abs(got - want).max(), scale)


def test_quicknet_block_integer_mode_follows_the_module(tmp_path):
    """The int8 first layer rounds its weights: compare the input-dependent part of the logits."""
    m = from_larq(quicknet_like(tmp_path))
    out = cv.export(m, tmp_path / "q.onebit", input_spec=SPEC)
    u, x = _images(64)
    got = Session(out).run(u).astype(np.float64)
    with torch.no_grad():
        want = m.forward_nhwc(x).double().numpy()
    gc, wc = got - got.mean(0), want - want.mean(0)
    assert np.corrcoef(gc.ravel(), wc.ravel())[0, 1] > 0.95
    assert (gc.argmax(1) == wc.argmax(1)).mean() >= 0.75


def test_import_cli_exports_the_quicknet_block_in_both_modes(tmp_path):
    from onebit.cli import main

    h5 = quicknet_like(tmp_path)
    for extra in ([], ["--float-boundary"]):
        out = tmp_path / f"cli{len(extra)}.onebit"
        r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out), *extra])
        assert r.exit_code == 0, r.output
        assert fmt.load(out).ops[0].type == ("conv2d_f32" if extra else "conv2d_u8")


def test_activation_then_batchnorm_before_a_binary_layer_is_refused_by_name(tmp_path):
    """sign(s * relu(z) + t) is not a threshold stage the converter writes: a clear error."""
    m = from_larq(quicknet_like(tmp_path, binary_after_bn1=True))
    with pytest.raises(ConversionError, match=r"'q1.0'.*activation then BatchNorm 'bn1' feeding a bits layer"):
        cv.to_bytes(m, input_spec=SPEC)


def test_per_channel_clamp_checked_by_both_loaders(tmp_path):
    m = from_larq(quicknet_like(tmp_path))
    data = cv.to_bytes(m, input_spec=SPEC)

    def per_channel(op):
        return "lower" in op.get("tensors", {})

    def first_per_channel(fn):
        def edit(op, graph, header):
            target = next(o for o in graph["ops"] if o["type"] == "clamp_f32" and per_channel(o))
            fn(target, graph, header)
        return edit

    def with_attrs(op, graph, header):
        op["attrs"] = {"min": 0.0, "max": 1.0}
    both_reject(edit_op(data, "clamp_f32", first_per_channel(with_attrs)), "exclude each other")

    def no_upper(op, graph, header):
        del op["tensors"]["upper"]
    both_reject(edit_op(data, "clamp_f32", first_per_channel(no_upper)), "tensor roles")

    def swapped(op, graph, header):
        op["tensors"]["lower"], op["tensors"]["upper"] = op["tensors"]["upper"], op["tensors"]["lower"]
    both_reject(edit_op(data, "clamp_f32", first_per_channel(swapped)), "'lower' exceeds 'upper'")

    def wrong_shape(op, graph, header):
        op["tensors"]["lower"] = next(o for o in graph["ops"] if o["type"] == "dense_f32")["tensors"]["bias"]
    both_reject(edit_op(data, "clamp_f32", first_per_channel(wrong_shape)), "lower")
