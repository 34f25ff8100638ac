"""Write Keras 2 ``.h5`` files with h5py (the layout of Keras 2's ``hdf5_format``) and compute
their forward with NumPy, for the importer's tests (no TensorFlow)."""
from __future__ import annotations

import json

import h5py
import numpy as np


def layer(cls, name, inbound=None, **cfg):
    """One functional-config layer entry; ``inbound`` = names of the input layers."""
    entry = {"class_name": cls, "config": {"name": name, "trainable": True, "dtype": "float32", **cfg},
             "name": name}
    if inbound is not None:
        entry["inbound_nodes"] = [[[n, 0, 0, {}] for n in inbound]]
    return entry


def input_layer(name, shape):
    return {"class_name": "InputLayer", "name": name, "inbound_nodes": [],
            "config": {"batch_input_shape": [None, *shape], "dtype": "float32", "sparse": False,
                       "ragged": False, "name": name}}


def functional(layers, inp, out, name="model"):
    return {"class_name": "Functional", "config": {"name": name, "layers": layers,
                                                    "input_layers": [[inp, 0, 0]], "output_layers": [[out, 0, 0]]}}


def sequential(layers, name="sequential"):
    return {"class_name": "Sequential", "config": {"name": name, "layers": layers}}


#: Input spec of the small ImageNet-normalized models the tests write (16x16 RGB, Larq Zoo's
#: preprocessing mean and std)
SPEC16 = {"dataset": None, "shape": [16, 16, 3], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def module_logits(m, u, spec):
    """An imported torch module's logits (float64) on uint8 NHWC images ``u``, normalized as
    ``spec`` says."""
    import torch

    x = (u / 255.0 - np.array(spec["mean"])) / np.array(spec["std"])
    with torch.no_grad():
        return m.forward_nhwc(torch.from_numpy(x).float()).double().numpy()


def bn_weights(rng, c):
    """Random non-degenerate BatchNormalization weights of ``c`` channels, in Keras' order."""
    return [("gamma", rng.uniform(0.5, 1.5, c)), ("beta", rng.normal(0, 0.3, c)),
            ("moving_mean", rng.normal(0, 0.3, c)), ("moving_variance", rng.uniform(0.5, 2, c))]


def binary_tail(src, rng, hw, cin, pad_values=0.0):
    """QuantConv2D 3x3 'same' (ste_sign, 32 filters, ``pad_values``) -> BN -> MaxPool 2 -> Flatten ->
    QuantDense 10 -> BN (named ``bn3``), reading layer ``src`` (``hw`` x ``hw`` x ``cin``): the
    config entries and their weights, drawn from ``rng``."""
    layers = [layer("QuantConv2D", "qconv", [src], filters=32, kernel_size=[3, 3], strides=[1, 1], padding="same",
                    use_bias=False, activation="linear", pad_values=pad_values, input_quantizer="ste_sign",
                    kernel_quantizer="ste_sign"),
              layer("BatchNormalization", "bn2", ["qconv"], axis=[3], epsilon=1e-3),
              layer("MaxPooling2D", "pool", ["bn2"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
              layer("Flatten", "flat", ["pool"]),
              layer("QuantDense", "head", ["flat"], units=10, use_bias=False, activation="linear",
                    input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
              layer("BatchNormalization", "bn3", ["head"], axis=[1], epsilon=1e-3)]
    weights = {"qconv": [("kernel", rng.normal(0, 1, (3, 3, cin, 32)))], "bn2": bn_weights(rng, 32),
               "head": [("kernel", rng.normal(0, 1, ((hw // 2) ** 2 * 32, 10)))], "bn3": bn_weights(rng, 10)}
    return layers, weights


def write(path, config, weights, *, weights_only=False, layer_order=None):
    """``weights``: {layer: [(short name, array), ...]} in Keras' weight order. Layers without
    weights are listed too (Keras lists every layer); ``config=None`` with ``weights_only``."""
    names = layer_order or [ly["config"]["name"] for ly in (config or {}).get("config", {}).get("layers", [])]
    for n in weights:
        if n not in names:
            names.append(n)
    with h5py.File(path, "w") as f:
        if weights_only:
            g = f
        else:
            f.attrs["model_config"] = json.dumps(config).encode("utf-8")
            g = f.create_group("model_weights")
        f.attrs["keras_version"] = b"2.16.0"
        f.attrs["backend"] = b"tensorflow"
        g.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            lg = g.create_group(n)
            ws = weights.get(n, [])
            lg.attrs["weight_names"] = np.array([f"{n}/{w}:0".encode() for w, _ in ws])
            for w, a in ws:
                a = np.asarray(a)
                lg.create_dataset(f"{n}/{w}:0", data=a if a.dtype.kind in "iub" else a.astype(np.float32))
    return path


# ----------------------------------------------------------------------------- NumPy forward (NHWC)

def sign(x):
    return np.where(x >= 0, 1.0, -1.0)


def pad(x, t, b, left, r, value=0.0):
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def same(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv(x, k, stride=1, padding="valid", value=0.0):
    """Keras Conv2D: x NHWC, k HWIO."""
    kh, kw, _, co = k.shape
    if padding == "same":
        x = pad(x, *same(x.shape[1], kh, stride), *same(x.shape[2], kw, stride), value)
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    y = np.zeros((n, oh, ow, co))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            y += patch @ k[i, j]
    return y


def depthwise(x, k, stride=1, padding="valid"):
    """Keras DepthwiseConv2D: k (kh, kw, C, mult); output channel c*mult + m."""
    kh, kw, c, mult = k.shape
    if padding == "same":
        x = pad(x, *same(x.shape[1], kh, stride), *same(x.shape[2], kw, stride))
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    y = np.zeros((n, oh, ow, c, mult))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            y += patch[..., None] * k[i, j]
    return y.reshape(n, oh, ow, c * mult)


def bn(x, gamma, beta, mean, var, eps=1e-3):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def maxpool(x, k):
    n, h, w, c = x.shape
    return x[:, :h // k * k, :w // k * k].reshape(n, h // k, k, w // k, k, c).max(axis=(2, 4))


def avgpool_same(x, k, s):
    """Keras AveragePooling2D(k, s, 'same'): the mean over the real inputs of each window."""
    t, b = same(x.shape[1], k, s)
    left, r = same(x.shape[2], k, s)
    xs = pad(x, t, b, left, r)
    ones = pad(np.ones_like(x[:1, ..., :1]), t, b, left, r)
    n, h, w, c = xs.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    y = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            win = xs[:, i * s:i * s + k, j * s:j * s + k]
            cnt = ones[:, i * s:i * s + k, j * s:j * s + k].sum()
            y[:, i, j] = win.sum(axis=(1, 2)) / cnt
    return y
