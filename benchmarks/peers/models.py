"""Peer models: the onebit reference architectures rebuilt in Larq, plus their float32 and int8 twins.

Runs inside ``.peers-venv`` (see ``setup_peers.sh``), never inside the onebit venv. Weights are
random (seeded): latency does not depend on them. Three variants of every architecture:

- ``binary``: Larq ``QuantConv2D``/``QuantDense`` with ``ste_sign`` input and kernel quantizers,
  each followed by ``BatchNormalization``. ``convert_keras_model`` turns the sign of the input
  into ``LceQuantize`` and folds the BN into the ``LceBconv2d`` output transform (float out, or
  bit-packed out when the next layer binarizes it again).
- ``float``: the same topology with float ``Conv2D``/``Dense`` + BN + ReLU (ReLU stands where the
  sign activation stood). The TFLite converter folds BN into the convolution.
- ``int8``: the float twin through TFLite full-integer post-training quantization (int8 in,
  int8 out, per-channel weights) calibrated on a few seeded random inputs.

Binary work of a k x k convolution = H_out * W_out * C_out * k * k * C_in bit-MACs (the
popcount work onebit counts; e.g. 56*56*64*64*9 = 115.6 M for each reference layer).
"""

from __future__ import annotations

import os

# Larq 0.14 / LCE 0.16 need Keras 2 (tf-keras); TF 2.16 ships Keras 3 as tf.keras otherwise.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import dataclasses
import re

import numpy as np
import tensorflow as tf
import larq as lq

keras = tf.keras

# The four reference layers of the engine: 115.6 M bit-MACs each at 3x3, stride 1, same.
REFERENCE_LAYERS = ("56x56x64-64", "28x28x128-128", "14x14x256-256", "7x7x512-512")

_LAYER_RE = re.compile(r"^(\d+)x(\d+)x(\d+)-(\d+)((?:,[ks]=\d+)*)$")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One binary convolution layer, 'same' padding, dilation 1."""

    h: int
    w: int
    cin: int
    cout: int
    k: int = 3
    s: int = 1

    @property
    def name(self) -> str:
        return f"{self.h}x{self.w}x{self.cin}-{self.cout}"

    @property
    def out_hw(self) -> tuple[int, int]:
        # 'same' padding: ceil(in / stride)
        return (-(-self.h // self.s), -(-self.w // self.s))

    @property
    def bitmacs(self) -> int:
        ho, wo = self.out_hw
        return ho * wo * self.cout * self.k * self.k * self.cin


def parse_layer(spec: str) -> LayerSpec:
    """Parse ``HxWxCin-Cout[,k=K][,s=S]`` (the ``onebit bench --layer`` syntax)."""
    m = _LAYER_RE.match(spec.strip())
    if not m:
        raise ValueError(
            f"bad layer spec {spec!r}: expected HxWxCin-Cout[,k=K][,s=S], e.g. 56x56x64-64,k=3,s=1"
        )
    h, w, cin, cout = (int(g) for g in m.groups()[:4])
    opts = dict(o.split("=") for o in m.group(5).split(",") if o)
    k, s = int(opts.get("k", 3)), int(opts.get("s", 1))
    if min(h, w, cin, cout, k, s) < 1:
        raise ValueError(f"bad layer spec {spec!r}: every size must be >= 1")
    return LayerSpec(h, w, cin, cout, k, s)


def _binary_kwargs(pad_values: float = 1.0) -> dict:
    return dict(
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
        pad_values=pad_values,
    )


def layer_model(spec: LayerSpec, variant: str, pad_values: float = 1.0) -> keras.Model:
    """Float NHWC input -> (sign) -> k x k conv 'same' -> BN -> float output, batch 1."""
    x_in = keras.Input((spec.h, spec.w, spec.cin), batch_size=1)
    if variant == "binary":
        y = lq.layers.QuantConv2D(
            spec.cout, spec.k, strides=spec.s, padding="same", **_binary_kwargs(pad_values)
        )(x_in)
    else:
        y = keras.layers.Conv2D(spec.cout, spec.k, strides=spec.s, padding="same", use_bias=False)(x_in)
    y = keras.layers.BatchNormalization(momentum=0.9)(y)
    return keras.Model(x_in, y, name=f"layer_{spec.name}_{variant}")


def cifar_binarynet(variant: str, pad_values: float = 1.0) -> keras.Model:
    """BinaryNet VGG-small (Courbariaux et al. 2016), onebit's ``cifar-binarynet``.

    128C3-128C3-MP-256C3-256C3-MP-512C3-512C3-MP-1024FC-1024FC-10; the first conv and the last
    dense are float; BN follows every conv/dense and max pooling comes after the BN (onebit's
    conversion-friendly order, which lets LCE pool on bits: pooling commutes with sign).
    """
    binary = variant == "binary"
    x_in = keras.Input((32, 32, 3), batch_size=1)
    y = keras.layers.Conv2D(128, 3, padding="same", use_bias=False)(x_in)
    y = keras.layers.BatchNormalization(momentum=0.9)(y)
    if not binary:
        y = keras.layers.ReLU()(y)
    plan = [(128, True), (256, False), (256, True), (512, False), (512, True)]
    for filters, pool in plan:
        if binary:
            y = lq.layers.QuantConv2D(filters, 3, padding="same", **_binary_kwargs(pad_values))(y)
        else:
            y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = keras.layers.BatchNormalization(momentum=0.9)(y)
        if not binary:
            y = keras.layers.ReLU()(y)
        if pool:
            y = keras.layers.MaxPool2D(2)(y)
    y = keras.layers.Flatten()(y)
    for units in (1024, 1024):
        if binary:
            kw = _binary_kwargs()
            kw.pop("pad_values")
            y = lq.layers.QuantDense(units, **kw)(y)
        else:
            y = keras.layers.Dense(units, use_bias=False)(y)
        y = keras.layers.BatchNormalization(momentum=0.9)(y)
        if not binary:
            y = keras.layers.ReLU()(y)
    y = keras.layers.Dense(10)(y)
    return keras.Model(x_in, y, name=f"cifar_binarynet_{variant}")


# No leading underscore: Keras uses the class name as a TF name scope, which must not start with "_".
class ReluThenConv2D(keras.layers.Conv2D):
    """Float twin of a binary conv: ReLU where the sign input quantizer was, then the conv."""

    def call(self, inputs):
        return super().call(tf.nn.relu(inputs))


class ReluThenDense(keras.layers.Dense):
    def call(self, inputs):
        return super().call(tf.nn.relu(inputs))


class ReluThenDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    def call(self, inputs):
        return super().call(tf.nn.relu(inputs))


_LARQ_ONLY_KEYS = (
    "input_quantizer", "kernel_quantizer", "depthwise_quantizer", "pad_values", "metrics",
)


def _float_twin_of(layer):
    """clone_model hook: Larq quantized layer -> float Keras layer of the same shape."""
    if not isinstance(
        layer, (lq.layers.QuantConv2D, lq.layers.QuantDense, lq.layers.QuantDepthwiseConv2D)
    ):
        return layer.__class__.from_config(layer.get_config())
    cfg = layer.get_config()
    quantized_input = cfg.get("input_quantizer") is not None
    for key in _LARQ_ONLY_KEYS:
        cfg.pop(key, None)
    if isinstance(layer, lq.layers.QuantConv2D):
        cls = ReluThenConv2D if quantized_input else keras.layers.Conv2D
    elif isinstance(layer, lq.layers.QuantDense):
        cls = ReluThenDense if quantized_input else keras.layers.Dense
    else:
        cls = ReluThenDepthwiseConv2D if quantized_input else keras.layers.DepthwiseConv2D
    return cls.from_config(cfg)


def _zoo_builder(name: str):
    import larq_zoo as lqz

    return {
        "quicknet-small": lqz.sota.QuickNetSmall,
        "binary-resnet-e18": lqz.literature.BinaryResNetE18,
        "birealnet18": lqz.literature.BiRealNet,
    }[name]


def zoo_model(name: str, variant: str) -> keras.Model:
    """A larq-zoo network at 224x224x3, random weights (``weights=None``), 1000 classes."""
    # larq-zoo's factories type-check input_tensor against tf.Tensor, which a tf-keras
    # KerasTensor fails; with input_shape the batch dimension is None and both converters
    # fix it to 1.
    model = _zoo_builder(name)(input_shape=(224, 224, 3), weights=None)
    if variant == "binary":
        return model
    return keras.models.clone_model(model, clone_function=_float_twin_of)


# onebit model name -> builder(variant, pad_values). 'binary-resnet-e18' is larq-zoo's
# BinaryResNetE18 (DESIGN §4 row); 'birealnet18' is larq-zoo's BiRealNet (onebit's birealnet18).
MODELS = {
    "cifar-binarynet": lambda variant, pad_values=1.0: cifar_binarynet(variant, pad_values),
    "quicknet-small": lambda variant, pad_values=1.0: zoo_model("quicknet-small", variant),
    "binary-resnet-e18": lambda variant, pad_values=1.0: zoo_model("binary-resnet-e18", variant),
    "birealnet18": lambda variant, pad_values=1.0: zoo_model("birealnet18", variant),
}


def randomize(model: keras.Model, seed: int = 0) -> keras.Model:
    """Seeded non-trivial weights and BN statistics (so no BN folds to an identity)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0] if layer.gamma is not None else layer.moving_mean.shape[0]
            vals = []
            for w in layer.weights:
                nm = w.name.split("/")[-1]
                if nm.startswith("gamma"):
                    vals.append(rng.uniform(0.5, 1.5, n).astype(np.float32))
                elif nm.startswith("beta") or nm.startswith("moving_mean"):
                    vals.append(rng.normal(0.0, 0.2, n).astype(np.float32))
                else:  # moving_variance
                    vals.append(rng.uniform(0.5, 2.0, n).astype(np.float32))
            layer.set_weights(vals)
        else:
            ws = layer.get_weights()
            if ws:
                layer.set_weights([rng.normal(0.0, 0.05, w.shape).astype(np.float32) for w in ws])
    return model


def binary_macs(model: keras.Model) -> int:
    """Sum of bit-MACs over Larq layers whose input AND kernel are binarized."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += binary_macs(layer)
            continue
        if not isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense)):
            continue
        if layer.input_quantizer is None or layer.kernel_quantizer is None:
            continue
        out = layer.output_shape
        kernel = layer.kernel.shape  # conv: kh, kw, cin/groups, cout; dense: in, out
        per_output = int(np.prod(kernel[:-1]))
        total += int(np.prod(out[1:])) * per_output
    return total


def build(name: str, variant: str, pad_values: float = 1.0, seed: int = 0) -> keras.Model:
    """Build a reference layer (``HxWxCin-Cout[,k=,s=]``) or a named model, seeded weights.

    variant: "binary" (Larq) or "float" (twin; the int8 model is the quantized float twin).
    """
    if variant not in ("binary", "float"):
        raise ValueError(f"variant must be 'binary' or 'float', got {variant!r}")
    tf.keras.utils.set_random_seed(seed)
    if name in MODELS:
        model = MODELS[name](variant, pad_values)
    else:
        model = layer_model(parse_layer(name), variant, pad_values)
    return randomize(model, seed)


#: larq_zoo modules whose ``*_out`` Lambda layers return their input (real_to_bin_nets.py)
IDENTITY_LAMBDA_MODULES = {"larq_zoo.literature.real_to_bin_nets"}


def load_h5(path: str) -> keras.Model:
    """A Keras / Larq model saved with ``model.save("x.h5")``, for inference.

    Larq's layers and quantizers are registered with Keras when ``larq`` is imported. Larq Zoo's
    models also name plain functions of theirs: as initializers (QuickNet's
    ``blurpool_initializer``), which Keras cannot deserialize by name and which play no part in
    inference, so they are replaced by zeros; elsewhere (XNOR-Net's weight quantizer) they are
    given to Keras by name. Real-to-Binary Net's identity Lambdas become linear activations. The
    saved weights are then loaded into the rebuilt architecture."""
    import importlib
    import inspect
    import json
    import pkgutil

    import h5py
    import larq  # noqa: F401
    import larq_zoo

    def plain(node, key=""):
        if isinstance(node, dict):
            if node.get("class_name") == "function" and key.endswith("initializer"):
                return {"class_name": "Zeros", "config": {}}
            cfg = node.get("config") or {}
            if node.get("class_name") == "Lambda" and cfg.get("module") in IDENTITY_LAMBDA_MODULES and \
                    str(cfg.get("name", "")).endswith("_out"):
                # ``Lambda(lambda x: x, name=f"{name}_out")`` of larq_zoo's source: the identity,
                # rebuilt as a linear Activation (Keras refuses to load a Lambda's bytecode)
                return dict(node, class_name="Activation", config={"name": cfg["name"], "activation": "linear",
                                                                   "dtype": cfg.get("dtype", "float32")})
            return {k: plain(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v, key) for v in node]
        return node

    with h5py.File(path, "r") as f:
        config = f.attrs["model_config"]
    config = json.loads(config.decode() if isinstance(config, bytes) else config)
    functions = {}  # other functions (XNOR-Net's weight quantizer) are Larq Zoo's own, by name
    for info in pkgutil.walk_packages(larq_zoo.__path__, "larq_zoo."):
        if ".tests" not in info.name and not info.name.endswith("_test"):
            mod = importlib.import_module(info.name)
            functions.update({n: f for n, f in vars(mod).items()
                              if inspect.isfunction(f) and f.__module__ == mod.__name__})
    config = plain(config)
    layers = config.get("config", {}).get("layers", [])
    if any(ly.get("class_name") == "Lambda" for ly in layers):
        model = _zoo_architecture(config, layers)
    else:
        model = tf.keras.models.model_from_json(json.dumps(config), custom_objects=functions)
    model.load_weights(path)
    return model


def _zoo_architecture(config: dict, layers: list) -> keras.Model:
    """A Larq Zoo model with Lambda layers other than the identities above (MeliusNet's grouped
    convolutions and improvement merges), rebuilt by Larq Zoo's own code: Keras saves a Lambda's closure by value or by name only
    (``TFOpLayer(tf.split, ...)`` keeps ``"split"``), so it cannot rebuild such a layer from the
    file. The architecture is the zoo function of the model's name with ``weights=None`` and the
    file's input shape and class count; a file saved without the final softmax loses it here too."""
    import larq_zoo

    name = str(config["config"].get("name", "")).lower()
    fns = {n.lower(): getattr(mod, n) for mod in (larq_zoo.sota, larq_zoo.literature) for n in mod.__all__}
    if name not in fns:
        raise ValueError(f"model {name!r} has Lambda layers and is not a Larq Zoo model: Keras cannot rebuild it")
    shape = next(ly["config"]["batch_input_shape"][1:] for ly in layers if ly.get("class_name") == "InputLayer")
    dense = [ly for ly in layers if ly.get("class_name") in ("Dense", "QuantDense")]
    model = fns[name](weights=None, input_shape=tuple(shape), num_classes=int(dense[-1]["config"]["units"]))
    if layers[-1].get("class_name") != "Activation" and isinstance(model.layers[-1], tf.keras.layers.Activation):
        model = tf.keras.Model(model.inputs, model.layers[-1].input, name=model.name)
    return model


def to_lce(model: keras.Model) -> bytes:
    """LCE flatbuffer (float in, float out) via ``larq_compute_engine.convert_keras_model``."""
    import larq_compute_engine as lce

    return lce.convert_keras_model(model)


def to_tflite_float(model: keras.Model) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    return conv.convert()


def to_tflite_int8(model: keras.Model, calib: int = 8, seed: int = 0) -> bytes:
    """Full-integer post-training quantization (int8 in/out, per-channel weights)."""
    shape = [1] + [int(d) for d in model.input_shape[1:]]
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(calib):
            yield [rng.normal(0.0, 1.0, shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()
