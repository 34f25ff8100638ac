"""Keras 2 / Larq .h5 import (h5py only): small models written here, checked against a NumPy
forward; malformed files and layers without an exact equivalent are clear errors."""
import numpy as np
import pytest
import torch

pytest.importorskip("h5py")

import larq_h5_writer as K  # noqa: E402

from onebit.convert.larq import LarqImportError, from_larq  # noqa: E402

RNG = np.random.default_rng(0)


def _r(*shape, lo=None):
    a = RNG.normal(0, 1, shape)
    return np.abs(a) + lo if lo is not None else a


def _q(name):
    return {"module": "larq.quantizers", "class_name": name, "config": {"name": name.lower(), "clip_value": 1.25},
            "registered_name": name}


def _bn_weights(c):
    return [("gamma", _r(c, lo=0.5)), ("beta", _r(c)), ("moving_mean", _r(c)), ("moving_variance", _r(c, lo=0.5))]


def _bn(x, ws):
    d = dict(ws)
    return K.bn(x, d["gamma"], d["beta"], d["moving_mean"], d["moving_variance"])


def _run(model, x_nhwc):
    with torch.no_grad():
        return model.forward_nhwc(torch.from_numpy(x_nhwc).float()).double().numpy()


def residual_model(tmp_path):
    """Functional graph: stride-2 'same' conv on an even input (uneven padding), BN, one-padded
    binary conv, Add, Concatenate, max pool, Flatten (NHWC order) and a magnitude-aware QuantDense."""
    L = [K.input_layer("in", (8, 8, 3)),
         K.layer("Conv2D", "conv", ["in"], filters=4, kernel_size=[3, 3], strides=[2, 2], padding="same",
                 use_bias=True, activation="linear", data_format="channels_last", dilation_rate=[1, 1], groups=1),
         K.layer("BatchNormalization", "bn", ["conv"], axis=[3], epsilon=1e-3, center=True, scale=True),
         K.layer("QuantConv2D", "qconv", ["bn"], filters=4, kernel_size=[3, 3], strides=[1, 1], padding="same",
                 use_bias=False, activation="linear", pad_values=1.0, input_quantizer=_q("SteSign"),
                 kernel_quantizer="ste_sign", data_format="channels_last", dilation_rate=[1, 1]),
         K.layer("BatchNormalization", "bn2", ["qconv"], axis=-1, epsilon=1e-3),
         K.layer("Add", "add", ["bn", "bn2"]),
         K.layer("Concatenate", "cat", ["add", "bn2"], axis=-1),
         K.layer("MaxPooling2D", "pool", ["cat"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
         K.layer("Flatten", "flat", ["pool"]),
         K.layer("Dropout", "drop", ["flat"], rate=0.5),
         K.layer("QuantDense", "head", ["drop"], units=5, use_bias=True, activation="linear",
                 input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign")]
    W = {"conv": [("kernel", _r(3, 3, 3, 4)), ("bias", _r(4))], "bn": _bn_weights(4),
         "qconv": [("kernel", _r(3, 3, 4, 4))], "bn2": _bn_weights(4),
         "head": [("kernel", _r(2 * 2 * 8, 5)), ("bias", _r(5))]}
    path = K.write(tmp_path / "res.h5", K.functional(L, "in", "head"), W)

    def ref(x):
        a = _bn(K.conv(x, W["conv"][0][1], 2, "same") + W["conv"][1][1], W["bn"])
        b = _bn(K.conv(K.sign(a), K.sign(W["qconv"][0][1]), 1, "same", value=1.0), W["bn2"])
        c = np.concatenate([a + b, b], axis=-1)
        f = K.maxpool(c, 2).reshape(len(x), -1)
        k = W["head"][0][1]
        return K.sign(f) @ (K.sign(k) * np.abs(k).mean(0)) + W["head"][1][1]
    return path, ref


def test_functional_graph_equals_numpy_reference(tmp_path):
    path, ref = residual_model(tmp_path)
    m = from_larq(path)
    x = RNG.normal(0, 1, (4, 8, 8, 3))
    np.testing.assert_allclose(_run(m, x), ref(x), rtol=1e-4, atol=1e-4)


def test_sequential_depthwise_approx_swish_avgpool(tmp_path):
    L = [K.input_layer("in", (6, 6, 2)),
         K.layer("DepthwiseConv2D", "dw", kernel_size=[3, 3], strides=[1, 1], padding="same", depth_multiplier=2,
                 use_bias=False, activation="linear"),
         K.layer("QuantConv2D", "qc", filters=3, kernel_size=[3, 3], strides=[1, 1], padding="valid",
                 use_bias=True, activation="relu", input_quantizer="approx_sign", kernel_quantizer=_q("SwishSign")),
         K.layer("AveragePooling2D", "ap", pool_size=[3, 3], strides=[2, 2], padding="same"),
         K.layer("GlobalAveragePooling2D", "gap"),
         K.layer("Dense", "fc", units=4, use_bias=True, activation="linear")]
    W = {"dw": [("depthwise_kernel", _r(3, 3, 2, 2))], "qc": [("kernel", _r(3, 3, 4, 3)), ("bias", _r(3))],
         "fc": [("kernel", _r(3, 4)), ("bias", _r(4))]}
    path = K.write(tmp_path / "seq.h5", K.sequential(L), W)
    m = from_larq(path)
    x = RNG.normal(0, 1, (3, 6, 6, 2))
    a = K.depthwise(x, W["dw"][0][1], 1, "same")
    b = np.maximum(K.conv(K.sign(a), K.sign(W["qc"][0][1])) + W["qc"][1][1], 0)
    c = K.avgpool_same(b, 3, 2).mean(axis=(1, 2))
    np.testing.assert_allclose(_run(m, x), c @ W["fc"][0][1] + W["fc"][1][1], rtol=1e-5, atol=1e-5)


def test_heaviside_and_noop_binary_kernel(tmp_path):
    k = np.sign(_r(1, 1, 3, 2)) + (np.sign(_r(1, 1, 3, 2)) == 0)
    L = [K.input_layer("in", (2, 2, 3)),
         K.layer("QuantConv2D", "qc", ["in"], filters=2, kernel_size=[1, 1], strides=[1, 1], padding="valid",
                 use_bias=False, activation="linear", input_quantizer="ste_heaviside",
                 kernel_quantizer={"class_name": "NoOp", "config": {"precision": 1}})]
    path = K.write(tmp_path / "h.h5", K.functional(L, "in", "qc"), {"qc": [("kernel", k)]})
    m = from_larq(path)
    x = RNG.normal(0, 1, (2, 2, 2, 3))
    want = K.conv((x > 0).astype(float), k).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(_run(m, x), want, atol=1e-6)


def test_weights_only_file_needs_an_architecture(tmp_path):
    path = K.write(tmp_path / "w.h5", None, {"fc": [("kernel", _r(3, 4))]}, weights_only=True, layer_order=["fc"])
    with pytest.raises(LarqImportError, match="weights-only"):
        from_larq(path)


# ----------------------------------------------------------------------------- bad input

def _small(tmp_path, *, cls="Dense", cfg=None, weights=None, name="m.h5"):
    cfg = cfg if cfg is not None else {"units": 2, "use_bias": True, "activation": "linear"}
    L = [K.input_layer("in", (3,)), K.layer(cls, "fc", ["in"], **cfg)]
    W = weights if weights is not None else {"fc": [("kernel", _r(3, 2)), ("bias", _r(2))]}
    return K.write(tmp_path / name, K.functional(L, "in", "fc"), W)


def test_dense_vector_model_imports(tmp_path):
    m = from_larq(_small(tmp_path))
    assert m(torch.zeros(1, 3)).shape == (1, 2)


def test_not_hdf5(tmp_path):
    p = tmp_path / "x.h5"
    p.write_text("hello")
    with pytest.raises(LarqImportError, match="not an HDF5 file"):
        from_larq(p)


def test_hdf5_but_not_keras(tmp_path):
    import h5py

    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    with pytest.raises(LarqImportError, match="not a Keras 2"):
        from_larq(p)


def test_missing_weight(tmp_path):
    p = _small(tmp_path, weights={"fc": [("kernel", _r(3, 2))]})
    with pytest.raises(LarqImportError, match=r"layer 'fc' \(Dense\): missing weight 'bias'"):
        from_larq(p)


def test_missing_layer_weights(tmp_path):
    p = _small(tmp_path, weights={})
    with pytest.raises(LarqImportError, match=r"layer 'fc' \(Dense\): missing weight 'kernel'"):
        from_larq(p)


def test_wrong_shape(tmp_path):
    p = _small(tmp_path, weights={"fc": [("kernel", _r(4, 2)), ("bias", _r(2))]})
    with pytest.raises(LarqImportError, match=r"layer 'fc' \(Dense\): weight 'kernel' has shape \[4, 2\], expected \[3, 2\]"):
        from_larq(p)


def test_unknown_layer(tmp_path):
    p = _small(tmp_path, cls="LSTM", cfg={"units": 2})
    with pytest.raises(LarqImportError, match=r"layer 'fc': layer class 'LSTM' is not supported"):
        from_larq(p)


@pytest.mark.parametrize("q, msg", [("foo_sign", "unknown input_quantizer 'foo_sign'"),
                                     ({"class_name": "SteTern", "config": {}}, "input_quantizer .SteTern.*no exact onebit equivalent"),
                                     ({"class_name": "DoReFa", "config": {"k_bit": 2}}, "input_quantizer .DoReFa.*2-bit")])
def test_unknown_or_inexact_quantizer(tmp_path, q, msg):
    p = _small(tmp_path, cls="QuantDense", cfg={"units": 2, "use_bias": True, "input_quantizer": q,
                                                 "kernel_quantizer": "ste_sign"})
    with pytest.raises(LarqImportError, match=rf"layer 'fc': {msg}"):
        from_larq(p)


def test_lambda_layer_is_refused(tmp_path):
    p = _small(tmp_path, cls="Lambda", cfg={"function": ["4wEAAAAAAAAA", None, None]}, weights={})
    with pytest.raises(LarqImportError, match=r"layer 'fc' \(Lambda\).*bytecode"):
        from_larq(p)
    with pytest.raises(LarqImportError, match=r"layer 'fc' \(Lambda\).*bytecode"):
        from_larq(p, identity_lambdas=("other_*",))


def test_lambda_declared_identity(tmp_path):
    L = [K.input_layer("in", (3,)),
         K.layer("Lambda", "blk_out", ["in"], function=["4wEAAAAAAAAA", None, None], function_type="lambda"),
         K.layer("Dense", "fc", ["blk_out"], units=2, use_bias=True, activation="linear")]
    W = {"fc": [("kernel", _r(3, 2)), ("bias", _r(2))]}
    p = K.write(tmp_path / "l.h5", K.functional(L, "in", "fc"), W)
    m = from_larq(p, identity_lambdas=("*_out",))
    x = RNG.normal(0, 1, (2, 3))
    np.testing.assert_allclose(_run(m, x), x @ W["fc"][0][1] + W["fc"][1][1], rtol=1e-5, atol=1e-6)


def test_extra_weights_are_refused(tmp_path):
    p = _small(tmp_path, cfg={"units": 2, "use_bias": False},
               weights={"fc": [("kernel", _r(3, 2)), ("bias", _r(2))]})
    with pytest.raises(LarqImportError, match="not used by this layer"):
        from_larq(p)


def test_keras3_file_is_refused(tmp_path):
    import h5py

    p = _small(tmp_path)
    with h5py.File(p, "a") as f:
        f.attrs["keras_version"] = b"3.3.0"
    with pytest.raises(LarqImportError, match="Keras 3.3.0"):
        from_larq(p)


def test_larq_zoo_architectures_are_listed():
    from onebit.convert.larq import zoo

    assert {"QuickNetSmall", "BinaryResNetE18", "XNORNet"} <= set(zoo.names())
    with pytest.raises(LarqImportError, match="unknown Larq Zoo architecture 'NoSuchNet'"):
        zoo.architecture("NoSuchNet")


def test_larq_zoo_weights_by_name_list_unmatched_and_missing(tmp_path):
    path = K.write(tmp_path / "w.h5", None, {"conv_x": [("kernel", _r(3, 3, 3, 8))]}, weights_only=True,
                   layer_order=["conv_x"])
    with pytest.raises(LarqImportError, match=r"not in QuickNetSmall: \['conv_x'\].*without weights: \['quant_conv2d'"):
        from_larq(path, larq_zoo="QuickNetSmall")
    with pytest.raises(LarqImportError, match="1 layers with weights, architecture QuickNetSmall has"):
        from_larq(path, larq_zoo="QuickNetSmall", match="order")


def test_larq_zoo_name_on_a_full_model_file_is_refused(tmp_path):
    path, _ = residual_model(tmp_path)
    with pytest.raises(LarqImportError, match="holds its own architecture"):
        from_larq(path, larq_zoo="QuickNetSmall")


def test_tf_op_add_and_serialized_function_quantizer(tmp_path):
    """``x + y`` recorded as a TFOpLambda node (Larq Zoo's QuickNet) and a quantizer serialized as a
    registered function (Larq Zoo's XNOR-Net ``xnor_weight_scale``: weights clipped to [-1, 1], then
    sign times the per-output-channel mean of |w|)."""
    L = [K.input_layer("in", (4, 4, 2)),
         K.layer("QuantConv2D", "qc", ["in"], filters=2, kernel_size=[3, 3], strides=[1, 1], padding="same",
                 use_bias=False, activation="linear", input_quantizer="ste_sign",
                 kernel_quantizer={"module": "builtins", "class_name": "function", "config": "xnor_weight_scale",
                                   "registered_name": "function"}),
         {"class_name": "TFOpLambda", "name": "tf.__operators__.add",
          "config": {"name": "tf.__operators__.add", "function": "__operators__.add"},
          "inbound_nodes": [["qc", 0, 0, {"y": ["in", 0, 0], "name": None}]]}]
    k = RNG.normal(0, 1, (3, 3, 2, 2))
    path = K.write(tmp_path / "op.h5", K.functional(L, "in", "tf.__operators__.add"), {"qc": [("kernel", k)]})
    m = from_larq(path)
    x = RNG.normal(0, 1, (2, 4, 4, 2))
    kc = np.clip(k, -1, 1)
    want = K.conv(K.sign(x), K.sign(kc) * np.abs(kc).mean(axis=(0, 1, 2)), 1, "same") + x
    np.testing.assert_allclose(_run(m, x), want.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


def test_unsupported_tf_op_is_named(tmp_path):
    L = [K.input_layer("in", (3,)),
         {"class_name": "TFOpLambda", "name": "tf.math.cumsum", "config": {"name": "tf.math.cumsum", "function": "math.cumsum"},
          "inbound_nodes": [["in", 0, 0, {}]]}]
    path = K.write(tmp_path / "op.h5", K.functional(L, "in", "tf.math.cumsum"), {})
    with pytest.raises(LarqImportError, match=r"layer 'tf.math.cumsum' \(TFOpLambda tf.math.cumsum\)"):
        from_larq(path)


def test_non_numeric_weight_is_refused(tmp_path):
    import h5py

    p = _small(tmp_path)
    with h5py.File(p, "a") as f:
        g = f["model_weights/fc"]
        del g["fc/bias:0"]
        g.create_dataset("fc/bias:0", data=np.array([b"a", b"b"]))
    with pytest.raises(LarqImportError, match="weight 'fc/bias:0' has dtype"):
        from_larq(p)


def test_channel_scaling_multiply_broadcasts(tmp_path):
    """Squeeze-and-excite scaling (Larq Zoo's RealToBinaryNet): pool -> Dense(sigmoid) -> Reshape
    (1, 1, C) -> Multiply with the (H, W, C) map; a PReLU with shared spatial axes after it."""
    L = [K.input_layer("in", (4, 4, 3)),
         K.layer("Conv2D", "conv", ["in"], filters=3, kernel_size=[1, 1], strides=[1, 1], padding="valid",
                 use_bias=False, activation="linear"),
         K.layer("GlobalAveragePooling2D", "gap", ["conv"]),
         K.layer("Dense", "fc", ["gap"], units=3, use_bias=False, activation="sigmoid"),
         K.layer("Reshape", "rs", ["fc"], target_shape=[1, 1, 3]),
         K.layer("Multiply", "mul", ["conv", "rs"]),
         K.layer("PReLU", "act", ["mul"], shared_axes=[1, 2])]
    W = {"conv": [("kernel", _r(1, 1, 3, 3))], "fc": [("kernel", _r(3, 3))], "act": [("alpha", _r(1, 1, 3))]}
    p = K.write(tmp_path / "se.h5", K.functional(L, "in", "act"), W)
    m = from_larq(p)
    x = RNG.normal(0, 1, (2, 4, 4, 3))
    c = K.conv(x, W["conv"][0][1])
    s = 1 / (1 + np.exp(-(c.mean(axis=(1, 2)) @ W["fc"][0][1])))
    y = c * s[:, None, None, :]
    want = np.where(y >= 0, y, W["act"][0][1] * y)
    np.testing.assert_allclose(_run(m, x), want.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-6)


def test_merge_of_unbroadcastable_shapes_is_refused(tmp_path):
    L = [K.input_layer("in", (4, 4, 3)),
         K.layer("MaxPooling2D", "pool", ["in"], pool_size=[2, 2], padding="valid"),
         K.layer("Add", "add", ["in", "pool"])]
    p = K.write(tmp_path / "bad.h5", K.functional(L, "in", "add"), {})
    with pytest.raises(LarqImportError, match=r"layer 'add' \(Add\): inputs of shapes \[\[3, 4, 4\], \[3, 2, 2\]\]"):
        from_larq(p)


def test_zero_padding_rescaling_relu6_softmax(tmp_path):
    L = [K.input_layer("in", (3, 3, 2)),
         K.layer("Rescaling", "scale", ["in"], scale=0.5, offset=-1.0),
         K.layer("ZeroPadding2D", "zp", ["scale"], padding=[[1, 2], [0, 1]]),
         K.layer("ReLU", "relu6", ["zp"], max_value=6.0, negative_slope=0.0, threshold=0.0),
         K.layer("Softmax", "sm", ["relu6"], axis=-1)]
    p = K.write(tmp_path / "zp.h5", K.functional(L, "in", "sm"), {})
    m = from_larq(p)
    x = RNG.normal(0, 8, (2, 3, 3, 2))
    y = np.clip(K.pad(x * 0.5 - 1.0, 1, 2, 0, 1), 0, 6)
    want = np.exp(y) / np.exp(y).sum(-1, keepdims=True)
    np.testing.assert_allclose(_run(m, x), want.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-6)
