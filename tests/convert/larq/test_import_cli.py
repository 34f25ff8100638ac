"""``onebit import``: an exportable Keras chain becomes a .onebit file that the engine runs like the
imported module; layers without a .onebit equivalent are listed by Keras name with the reason."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("h5py")

import larq_h5_writer as K  # noqa: E402

RNG = np.random.default_rng(1)


def _bn(c):
    return K.bn_weights(RNG, c)


def _chain(tmp_path, pad_values=0.0, softmax=True, scaling=False):
    """[Rescaling -> Normalization ->] Conv2D -> BN -> QuantConv2D (ste_sign, same) -> BN -> MaxPool
    -> Flatten -> QuantDense -> BN [-> softmax]."""
    first = "in"
    L = [K.input_layer("in", (8, 8, 3))]
    W = {}
    if scaling:
        L += [K.layer("Rescaling", "rescale", ["in"], scale=1 / 255.0, offset=0.0),
              K.layer("Normalization", "norm", ["rescale"], axis=[-1], invert=False)]
        W["norm"] = [("mean", np.array([0.5, 0.4, 0.3])), ("variance", np.array([0.04, 0.09, 0.0625])),
                     ("count", np.array(100, dtype=np.int64))]
        first = "norm"
    L += [K.layer("Conv2D", "conv", [first], filters=16, kernel_size=[3, 3], strides=[1, 1], padding="same",
                 use_bias=True, activation="linear"),
          K.layer("BatchNormalization", "bn", ["conv"], axis=[3], epsilon=1e-3)]
    W.update({"conv": [("kernel", RNG.normal(0, 0.5, (3, 3, 3, 16))), ("bias", RNG.normal(0, 0.1, 16))],
              "bn": _bn(16)})
    tail, tw = K.binary_tail("bn", RNG, 8, 16, pad_values)
    L += tail
    W.update(tw)
    out = "bn3"
    if softmax:
        L.append(K.layer("Activation", "probs", ["bn3"], activation="softmax"))
        out = "probs"
    return K.write(tmp_path / "chain.h5", K.functional(L, "in", out), W)


def test_import_exports_and_engine_follows_the_module(tmp_path):
    from onebit.cli import main
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.convert.larq import from_larq
    from onebit.runtime import Session

    h5 = _chain(tmp_path)
    out, pt = tmp_path / "m.onebit", tmp_path / "m.pt"
    r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out), "--pt", str(pt)])
    assert r.exit_code == 0, r.output
    assert "softmax is not exported" in r.output and out.stat().st_size > 0 and pt.stat().st_size > 0
    m = from_larq(h5)
    u8 = RNG.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    x = (u8 / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        probs = m.forward_nhwc(torch.from_numpy(x).float()).numpy()
    sess = Session(out)
    got = sess.run(u8)
    assert got.shape == (32, 10)
    # the engine computes exactly the converter's integer simulation of the module ...
    diffs = engine_vs_simulation(sess, simulate(str(out)), u8[:8])
    assert max(diffs.values()) <= 1e-5, diffs
    # ... which follows the imported float module up to the int8 rounding of the first layer
    ref = np.log(probs)
    corr = np.corrcoef((ref - ref.mean(1, keepdims=True)).ravel(), (got - got.mean(1, keepdims=True)).ravel())[0, 1]
    assert corr > 0.9


def _alexnet_like(tmp_path):
    """BinaryAlexNet's pattern: a binary-weight QuantConv2D on the float image (stride 2 "same" on
    an even input: padded after it only), max pool -> BN (gammas of both signs: min pools), a
    binary conv, max pool -> BN, Reshape to [1, 1, H*W*C] -> 1x1 QuantConv2D (a dense layer over
    the NHWC map) -> BN -> Flatten of the [1, 1, C] map."""
    def bn(c):
        g = RNG.uniform(0.5, 1.5, c) * RNG.choice([-1, 1], c)
        return [("gamma", g), ("beta", RNG.normal(0, 0.3, c)), ("moving_mean", RNG.normal(0, 0.3, c)),
                ("moving_variance", RNG.uniform(0.5, 2, c))]
    L = [K.input_layer("in", (16, 16, 3)),
         K.layer("QuantConv2D", "first", ["in"], filters=16, kernel_size=[3, 3], strides=[2, 2], padding="same",
                 use_bias=False, activation="linear", pad_values=0.0, input_quantizer=None,
                 kernel_quantizer="ste_sign"),
         K.layer("MaxPooling2D", "pool", ["first"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
         K.layer("BatchNormalization", "bn", ["pool"], axis=[3], epsilon=1e-3),
         K.layer("QuantConv2D", "qconv", ["bn"], filters=70, kernel_size=[3, 3], strides=[1, 1], padding="same",
                 use_bias=False, activation="linear", pad_values=0.0, input_quantizer="ste_sign",
                 kernel_quantizer="ste_sign"),
         K.layer("MaxPooling2D", "pool2", ["qconv"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
         K.layer("BatchNormalization", "bn2", ["pool2"], axis=[3], epsilon=1e-3),
         K.layer("Reshape", "reshape", ["bn2"], target_shape=[1, 1, 280]),
         K.layer("QuantConv2D", "fc", ["reshape"], filters=10, kernel_size=[1, 1], strides=[1, 1], padding="valid",
                 use_bias=False, activation="linear", input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
         K.layer("BatchNormalization", "bn3", ["fc"], axis=[3], epsilon=1e-3),
         K.layer("Flatten", "flat", ["bn3"])]
    W = {"first": [("kernel", RNG.normal(0, 1, (3, 3, 3, 16)))], "bn": bn(16),
         "qconv": [("kernel", RNG.normal(0, 1, (3, 3, 16, 70)))], "bn2": bn(70),
         "fc": [("kernel", RNG.normal(0, 1, (1, 1, 280, 10)))], "bn3": bn(10)}
    return K.write(tmp_path / "alex.h5", K.functional(L, "in", "flat"), W)


def test_import_binary_first_layer_pool_bn_and_reshape_dense(tmp_path):
    from onebit.cli import main
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.convert.larq import from_larq
    from onebit.runtime import Session
    from onebit.runtime import format as fmt

    h5 = _alexnet_like(tmp_path)
    out = tmp_path / "alex.onebit"
    r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out), "--mean", "0,0,0", "--std",
                                  ",".join([str(1 / 255)] * 3)])
    assert r.exit_code == 0, r.output
    mf = fmt.load(out)
    types = [op.type for op in mf.ops]
    assert types[0] == "conv2d_u8" and mf.ops[0].attrs["padding_end"] == [1, 1]
    fc = next(op for op in mf.ops if op.name.endswith("fc"))
    assert fc.type == "bconv2d" and fc.attrs["kernel"] == [2, 2]  # the reshape + 1x1 conv
    u8 = RNG.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    sess = Session(out)
    assert max(engine_vs_simulation(sess, simulate(str(out)), u8[:8]).values()) == 0
    # the model sees the raw pixels (std 1/255) and binary first-layer weights: the int8 first layer
    # is exact, so the engine's logits equal the imported module's up to float32 rounding
    m = from_larq(h5)
    with torch.no_grad():
        ref = m.forward_nhwc(torch.from_numpy(u8.astype(np.float32))).numpy()
    got = sess.run(u8)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_import_folds_input_scaling_into_the_input_normalization(tmp_path):
    from onebit.cli import main
    from onebit.convert.larq import from_larq
    from onebit.runtime import Session
    from onebit.runtime import format as fmt

    h5 = _chain(tmp_path, softmax=False, scaling=True)
    out = tmp_path / "s.onebit"
    r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "rescale, norm" in r.output
    # (u/255 - 0.5) / sqrt(0.04) per channel: mean 0.5, 0.4, 0.3 and std 0.2, 0.3, 0.25
    meta = fmt.load(out).metadata["input"]
    np.testing.assert_allclose(meta["mean"], [0.5, 0.4, 0.3], rtol=1e-6)
    np.testing.assert_allclose(meta["std"], [0.2, 0.3, 0.25], rtol=1e-6)
    m = from_larq(h5)
    u8 = RNG.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    with torch.no_grad():
        want = m.forward_nhwc(torch.from_numpy(u8.astype(np.float32))).numpy()
    got = Session(out).run(u8)
    corr = np.corrcoef((want - want.mean(1, keepdims=True)).ravel(), (got - got.mean(1, keepdims=True)).ravel())[0, 1]
    assert corr > 0.9


def test_import_exports_one_padding_and_refuses_other_pad_values(tmp_path):
    from onebit.cli import main
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.convert.larq import from_larq
    from onebit.convert.larq.check import strip_softmax
    from onebit.runtime import Session
    from onebit.runtime import format as fmt

    h5 = _chain(tmp_path, pad_values=1.0)
    out = tmp_path / "m.onebit"
    r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out)])
    assert r.exit_code == 0, r.output
    mf = fmt.load(out)
    assert mf.metadata["format_version"] == 2
    assert {op.name.rsplit(".", 1)[-1]: op.attrs.get("pad_value") for op in mf.ops if op.type == "bconv2d"} == {
        "qconv": 1, "head": None}  # the head: a map-sized bconv2d, no padding
    m = from_larq(h5)
    assert m.layers[next(k for k, n in m.keras_names.items() if n == "qconv")].pad_value == 1
    u8 = RNG.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    sess = Session(out)
    assert max(engine_vs_simulation(sess, simulate(str(out)), u8[:8]).values()) == 0
    x = (u8 / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert strip_softmax(m)
    with torch.no_grad():
        ref = m.forward_nhwc(torch.from_numpy(x).float()).numpy()  # logits
    got = sess.run(u8)
    corr = np.corrcoef((ref - ref.mean(1, keepdims=True)).ravel(), (got - got.mean(1, keepdims=True)).ravel())[0, 1]
    assert corr > 0.9

    h5 = _chain(tmp_path, pad_values=0.5)
    bad = tmp_path / "half.onebit"
    r = CliRunner().invoke(main, ["import", str(h5), "-o", str(bad)])
    assert r.exit_code != 0
    assert "layer 'qconv'" in r.output and "pad_values=0.5" in r.output
    assert not bad.exists()


def test_import_exports_a_graph_with_uneven_padding_one_padding_add_and_concat(tmp_path):
    from test_import import residual_model

    from onebit.cli import main
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.convert.larq import from_larq
    from onebit.runtime import Session

    h5, _ = residual_model(tmp_path)
    out = tmp_path / "r.onebit"
    r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out)])
    assert r.exit_code == 0, r.output
    sess = Session(out)
    u8 = RNG.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    assert max(engine_vs_simulation(sess, simulate(str(out)), u8[:8]).values()) == 0
    m = from_larq(h5)
    x = (u8 / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        ref = m.forward_nhwc(torch.from_numpy(x).float()).numpy()
    got = sess.run(u8)
    assert got.shape == ref.shape
    corr = np.corrcoef((ref - ref.mean(1, keepdims=True)).ravel(), (got - got.mean(1, keepdims=True)).ravel())[0, 1]
    assert corr > 0.8, corr


def test_import_bad_file_is_a_clear_error(tmp_path):
    from onebit.cli import main

    p = tmp_path / "x.h5"
    p.write_bytes(b"\x00" * 64)
    r = CliRunner().invoke(main, ["import", str(p), "-o", str(tmp_path / "x.onebit")])
    assert r.exit_code != 0 and "not an HDF5 file" in r.output


def test_import_float_boundary_follows_the_module_closer(tmp_path):
    """--float-boundary: the first conv is conv2d_f32 on the normalized image; the engine equals the
    simulation and follows the imported module closer than the default int8 first layer."""
    from onebit.cli import main
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.convert.larq import from_larq
    from onebit.runtime import Session
    from onebit.runtime import format as fmt

    h5 = _chain(tmp_path, softmax=False)
    outs = {}
    for flag in ([], ["--float-boundary"]):
        out = tmp_path / f"m{len(flag)}.onebit"
        r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out), *flag])
        assert r.exit_code == 0, r.output
        outs[bool(flag)] = out
    assert fmt.load(outs[True]).ops[0].type == "conv2d_f32"
    assert fmt.load(outs[False]).ops[0].type == "conv2d_u8"
    u8 = RNG.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    x = (u8 / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        want = from_larq(h5).forward_nhwc(torch.from_numpy(x).float()).double().numpy()
    err = {}
    for fb, out in outs.items():
        sess = Session(out)
        engine_vs_simulation(sess, simulate(str(out)), u8[:8])
        err[fb] = np.abs(sess.run(u8) - want).mean()
    assert err[True] < err[False], err


def _stem(tmp_path, multiplier=1):
    """QuickNet's stem as a chain: Conv2D (stride 2) -> BN -> ReLU -> DepthwiseConv2D 3x3 stride 2
    -> BN -> QuantConv2D -> BN -> Flatten -> QuantDense -> BN (odd sizes: symmetric 'same' pads)."""
    c = 8
    L = [K.input_layer("in", (17, 17, 3)),
         K.layer("Conv2D", "conv", ["in"], filters=c, kernel_size=[3, 3], strides=[2, 2], padding="same",
                 use_bias=False, activation="linear"),
         K.layer("BatchNormalization", "bn", ["conv"], axis=[3], epsilon=1e-3),
         K.layer("Activation", "relu", ["bn"], activation="relu"),
         K.layer("DepthwiseConv2D", "dw", ["relu"], kernel_size=[3, 3], strides=[2, 2], padding="same",
                 depth_multiplier=multiplier, use_bias=False, activation="linear"),
         K.layer("BatchNormalization", "bn_dw", ["dw"], axis=[3], epsilon=1e-3),
         K.layer("QuantConv2D", "qconv", ["bn_dw"], filters=16, kernel_size=[3, 3], strides=[1, 1], padding="same",
                 use_bias=False, activation="linear", pad_values=0.0, input_quantizer="ste_sign",
                 kernel_quantizer="ste_sign"),
         K.layer("BatchNormalization", "bn2", ["qconv"], axis=[3], epsilon=1e-3),
         K.layer("Flatten", "flat", ["bn2"]),
         K.layer("QuantDense", "head", ["flat"], units=10, use_bias=False, activation="linear",
                 input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
         K.layer("BatchNormalization", "bn3", ["head"], axis=[1], epsilon=1e-3)]
    W = {"conv": [("kernel", RNG.normal(0, 0.5, (3, 3, 3, c)))], "bn": _bn(c),
         "dw": [("depthwise_kernel", RNG.normal(0, 0.5, (3, 3, c, multiplier)))], "bn_dw": _bn(c * multiplier),
         "qconv": [("kernel", RNG.normal(0, 1, (3, 3, c * multiplier, 16)))], "bn2": _bn(16),
         "head": [("kernel", RNG.normal(0, 1, (5 * 5 * 16, 10)))], "bn3": _bn(10)}
    return K.write(tmp_path / "stem.h5", K.functional(L, "in", "bn3"), W)


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("float_boundary", [False, True])
def test_import_depthwise_stem_exports_and_engine_follows_the_module(tmp_path, float_boundary, multiplier):
    """Depth multiplier 1: ``dwconv2d_f32``; 2 (groups = 8 of 2 outputs each): the dense
    ``conv2d_f32`` with the block-diagonal kernel."""
    from onebit.cli import main
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.convert.larq import from_larq
    from onebit.runtime import Session
    from onebit.runtime import format as fmt

    h5 = _stem(tmp_path, multiplier)
    out = tmp_path / "stem.onebit"
    r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out)] + (["--float-boundary"] if float_boundary else []))
    assert r.exit_code == 0, r.output
    types = [op.type for op in fmt.load(out).ops]
    assert types[0] == ("conv2d_f32" if float_boundary else "conv2d_u8")
    assert ("dwconv2d_f32" in types) == (multiplier == 1) and types[1:].count("conv2d_f32") == (multiplier == 2)
    u8 = RNG.integers(0, 256, (32, 17, 17, 3), dtype=np.uint8)
    x = (u8 / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        want = from_larq(h5).forward_nhwc(torch.from_numpy(x).float()).double().numpy()
    sess = Session(out)
    engine_vs_simulation(sess, simulate(str(out)), u8[:8])
    got = sess.run(u8)
    corr = np.corrcoef((want - want.mean(0)).ravel(), (got - got.mean(0)).ravel())[0, 1]
    assert corr > (0.99 if float_boundary else 0.9), corr
