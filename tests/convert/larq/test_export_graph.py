"""Export of Keras graphs with branches (Add of two branches, a shared shortcut, a pooled 1x1
projection): engine == integer simulation bit for bit, engine ~= the imported float module."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("h5py")

import larq_h5_writer as K  # noqa: E402

import onebit.convert as cv  # noqa: E402
from onebit.convert import ConversionError  # noqa: E402
from onebit.convert.compare import engine_vs_simulation  # noqa: E402
from onebit.convert.larq import from_larq  # noqa: E402

RNG = np.random.default_rng(3)
RAW = {"dataset": None, "shape": [16, 16, 3], "mean": [0.0] * 3, "std": [1 / 255] * 3}


def _bn(c):
    return [("gamma", RNG.uniform(0.5, 1.5, c)), ("beta", RNG.normal(0, 0.3, c)),
            ("moving_mean", RNG.normal(0, 0.3, c)), ("moving_variance", RNG.uniform(0.5, 2, c))]


def _qconv(name, src, filters, k, s, padding):
    return K.layer("QuantConv2D", name, [src], filters=filters, kernel_size=[k, k], strides=[s, s],
                   padding=padding, use_bias=False, activation="linear", pad_values=0.0,
                   input_quantizer="ste_sign", kernel_quantizer="ste_sign")


def birealnet_like(tmp_path, exact_stem: bool, tf_op: bool = False):
    """Bi-Real Net's dataflow: stem conv -> BN -> max pool, two binary blocks whose output is
    added to their input (the shortcut is read by the next block's conv and by its add), a
    downsampling block (binary k2 s2 conv || average pool -> 1x1 conv -> BN), ReLU, global pool,
    dense logits."""
    def add(name, a, b):
        if not tf_op:
            return K.layer("Add", name, [a, b])
        return {"class_name": "TFOpLambda", "name": name, "inbound_nodes": [[a, 0, 0, {"y": [b, 0, 0], "name": None}]],
                "config": {"name": name, "function": "__operators__.add", "trainable": True, "dtype": "float32"}}

    L = [K.input_layer("in", (16, 16, 3)),
         K.layer("Conv2D", "stem", ["in"], filters=16, kernel_size=[3, 3], strides=[1, 1], padding="same",
                 use_bias=True, activation="linear"),
         K.layer("BatchNormalization", "stem_bn", ["stem"], axis=[3], epsilon=1e-3),
         K.layer("MaxPooling2D", "pool", ["stem_bn"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
         _qconv("q1", "pool", 16, 3, 1, "same"),
         K.layer("BatchNormalization", "bn1", ["q1"], axis=[3], epsilon=1e-3),
         add("add1", "bn1", "pool"),
         _qconv("q2", "add1", 16, 3, 1, "same"),
         K.layer("BatchNormalization", "bn2", ["q2"], axis=[3], epsilon=1e-3),
         add("add2", "bn2", "add1"),
         _qconv("q3", "add2", 32, 2, 2, "valid"),
         K.layer("BatchNormalization", "bn3", ["q3"], axis=[3], epsilon=1e-3),
         K.layer("AveragePooling2D", "avg", ["add2"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
         K.layer("Conv2D", "proj", ["avg"], filters=32, kernel_size=[1, 1], strides=[1, 1], padding="valid",
                 use_bias=False, activation="linear"),
         K.layer("BatchNormalization", "proj_bn", ["proj"], axis=[3], epsilon=1e-3),
         add("add3", "bn3", "proj_bn"),
         K.layer("Activation", "relu", ["add3"], activation="relu"),
         K.layer("GlobalAveragePooling2D", "gap", ["relu"]),
         K.layer("Dense", "head", ["gap"], units=10, use_bias=True, activation="linear")]
    # an exact stem: integer taps, so the int8 first layer computes the float conv exactly
    stem_w = RNG.integers(-1, 2, (3, 3, 3, 16)).astype(np.float64) if exact_stem else RNG.normal(0, 0.3, (3, 3, 3, 16))
    W = {"stem": [("kernel", stem_w), ("bias", RNG.normal(0, 1, 16))], "stem_bn": _bn(16),
         "q1": [("kernel", RNG.normal(0, 1, (3, 3, 16, 16)))], "bn1": _bn(16),
         "q2": [("kernel", RNG.normal(0, 1, (3, 3, 16, 16)))], "bn2": _bn(16),
         "q3": [("kernel", RNG.normal(0, 1, (2, 2, 16, 32)))], "bn3": _bn(32),
         "proj": [("kernel", RNG.normal(0, 0.3, (1, 1, 16, 32)))], "proj_bn": _bn(32),
         "head": [("kernel", RNG.normal(0, 0.3, (32, 10))), ("bias", RNG.normal(0, 0.1, 10))]}
    return K.write(tmp_path / "birealnet_like.h5", K.functional(L, "in", "head"), W)


def _export_and_run(tmp_path, h5, spec, n=16):
    from onebit.runtime import Session

    m = from_larq(h5)
    out = cv.export(m, tmp_path / "m.onebit", input_spec=spec)
    sess = Session(out)
    u = RNG.integers(0, 256, (n, *spec["shape"]), dtype=np.uint8)
    got = sess.run(u)
    x = (u / 255.0 - np.array(spec["mean"])) / np.array(spec["std"])
    with torch.no_grad():
        ref = m.forward_nhwc(torch.from_numpy(x).float()).double().numpy()
    diffs = engine_vs_simulation(sess, cv.simulate(str(out)), u)
    return m, sess, got, ref, diffs


@pytest.mark.parametrize("tf_op", [False, True], ids=["Add", "tf.add"])
def test_add_graph_engine_equals_simulation_and_float_module(tmp_path, tf_op):
    h5 = birealnet_like(tmp_path, exact_stem=True, tf_op=tf_op)
    m, sess, got, ref, diffs = _export_and_run(tmp_path, h5, RAW)
    assert max(diffs.values()) == 0.0, diffs
    types = [op.type for op in sess.model.ops]
    assert types.count("add") == 3 and types.count("bconv2d") == 3
    assert {"bitpack", "avgpool2d", "conv1x1_f32", "clamp_f32", "maxpool2d"} <= set(types)
    # every binary conv reads its input's sign through one bitpack per shared value
    readers = {}
    for op in sess.model.ops:
        if op.type == "bitpack":
            readers.setdefault(op.inputs[0], []).append(op.name)
    assert all(len(v) == 1 for v in readers.values()), readers
    # the stem is exact in int8 and every other value is float32: the engine follows the float
    # module to float32 rounding (a sign that rounding flips would show as a large difference)
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() <= 1e-4 * scale, (np.abs(got - ref).max(), scale)


def test_add_graph_with_int8_first_layer_follows_the_module(tmp_path):
    h5 = birealnet_like(tmp_path, exact_stem=False)
    spec = {"dataset": None, "shape": [16, 16, 3], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    _, _, got, ref, diffs = _export_and_run(tmp_path, h5, spec, n=64)
    assert max(diffs.values()) == 0.0, diffs
    # int8 rounding of the first layer flips a few signs: compare the input-dependent part
    gc, rc = got - got.mean(0), ref - ref.mean(0)
    assert np.corrcoef(gc.ravel(), rc.ravel())[0, 1] > 0.95
    assert (gc.argmax(1) == rc.argmax(1)).mean() >= 0.75


def test_import_cli_exports_an_add_graph(tmp_path):
    from onebit.cli import main

    h5 = birealnet_like(tmp_path, exact_stem=False)
    out = tmp_path / "cli.onebit"
    r = CliRunner().invoke(main, ["import", str(h5), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 0


def _graph_with(tmp_path, extra_layers, out, weights_extra, head_in=8):
    L = [K.input_layer("in", (8, 8, 3)),
         K.layer("Conv2D", "stem", ["in"], filters=8, kernel_size=[3, 3], strides=[1, 1], padding="same",
                 use_bias=False, activation="linear"),
         K.layer("BatchNormalization", "stem_bn", ["stem"], axis=[3], epsilon=1e-3),
         _qconv("q1", "stem_bn", 8, 3, 1, "same"),
         K.layer("BatchNormalization", "bn1", ["q1"], axis=[3], epsilon=1e-3),
         K.layer("Add", "add1", ["bn1", "stem_bn"])] + extra_layers + [
         K.layer("GlobalAveragePooling2D", "gap", [out]),
         K.layer("Dense", "head", ["gap"], units=4, use_bias=True, activation="linear")]
    W = {"stem": [("kernel", RNG.normal(0, 0.3, (3, 3, 3, 8)))], "stem_bn": _bn(8),
         "q1": [("kernel", RNG.normal(0, 1, (3, 3, 8, 8)))], "bn1": _bn(8),
         "head": [("kernel", RNG.normal(0, 0.3, (head_in, 4))), ("bias", RNG.normal(0, 0.1, 4))], **weights_extra}
    return K.write(tmp_path / "g.h5", K.functional(L, "in", "head"), W)


def _affine_graph_follows_the_module(tmp_path, h5, n_affine):
    """Engine == simulation, and the engine follows the module's input-dependent logits."""
    from onebit.runtime import Session
    from onebit.runtime import format as fmt

    m = from_larq(h5)
    spec = dict(RAW, shape=[8, 8, 3])
    out = cv.export(m, tmp_path / "affine.onebit", input_spec=spec, float_boundary=True)
    assert [op.type for op in fmt.load(out).ops].count("affine_f32") == n_affine
    sess = Session(out)
    u = RNG.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    assert max(engine_vs_simulation(sess, cv.simulate(out), u[:8]).values()) == 0.0
    with torch.no_grad():
        want = m.forward_nhwc(torch.from_numpy(u.astype(np.float32))).double().numpy()
    got = sess.run(u)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_batchnorm_on_an_add_is_an_affine_op(tmp_path):
    h5 = _graph_with(tmp_path, [K.layer("BatchNormalization", "bn_after_add", ["add1"], axis=[3], epsilon=1e-3)],
                     "bn_after_add", {"bn_after_add": _bn(8)})
    _affine_graph_follows_the_module(tmp_path, h5, 1)


def test_batchnorms_on_a_shared_value_are_affine_ops(tmp_path):
    h5 = _graph_with(tmp_path, [K.layer("BatchNormalization", "bn_shared", ["q1"], axis=[3], epsilon=1e-3),
                                K.layer("Add", "add2", ["bn_shared", "add1"])],
                     "add2", {"bn_shared": _bn(8)})
    _affine_graph_follows_the_module(tmp_path, h5, 2)


def test_concatenation_exports_and_engine_follows_the_module(tmp_path):
    """BinaryDenseNet's dataflow: a block's input concatenated with its new features (float32,
    concat op), read by the next binary conv (one bitpack of the concatenation)."""
    from onebit.runtime import Session
    from onebit.runtime import format as fmt

    h5 = _graph_with(tmp_path, [K.layer("Concatenate", "cat", ["add1", "bn1"], axis=-1),
                                _qconv("q2", "cat", 8, 3, 1, "same"),
                                K.layer("BatchNormalization", "bn2", ["q2"], axis=[3], epsilon=1e-3)],
                     "bn2", {"q2": [("kernel", RNG.normal(0, 1, (3, 3, 16, 8)))], "bn2": _bn(8)})
    spec = dict(RAW, shape=[8, 8, 3])
    m = from_larq(h5)
    out = cv.export(m, tmp_path / "cat.onebit", input_spec=spec)
    mf = fmt.load(out)
    cat = [op for op in mf.ops if op.type == "concat"]
    assert len(cat) == 1 and mf.values[cat[0].output].shape == (8, 8, 16)
    sess = Session(out)
    u = RNG.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    engine_vs_simulation(sess, cv.simulate(out), u[:8])
    with torch.no_grad():
        want = m.forward_nhwc(torch.from_numpy(u.astype(np.float32))).double().numpy()
    got = sess.run(u)
    corr = np.corrcoef((want - want.mean(0)).ravel(), (got - got.mean(0)).ravel())[0, 1]
    assert corr > 0.9, corr


def test_concatenation_along_another_axis_is_refused_by_name(tmp_path):
    h5 = _graph_with(tmp_path, [K.layer("Concatenate", "cat", ["add1", "bn1"], axis=1)], "cat", {})
    with pytest.raises(ConversionError, match=r"'cat'.*dimension"):
        cv.to_bytes(from_larq(h5), input_spec=dict(RAW, shape=[8, 8, 3]))
