"""One builder per Keras / Larq layer class: (config, weights, input shapes) -> torch module.

Shapes are torch's without the batch: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
Weights are re-laid-out from Keras (HWIO kernels, ``(in, out)`` dense kernels) to torch (OIHW,
``(out, in)``). Every builder checks the weight names and shapes it reads and raises
:class:`LarqImportError` naming the layer.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn

from onebit.convert.larq import modules as M
from onebit.convert.larq import quantizers as Q
from onebit.convert.larq.h5file import LarqImportError
from onebit.runtime.geometry import output_size


class Ctx:
    """What a builder gets: the layer's name, class, config, weights and input shapes."""

    def __init__(self, name, cls, cfg, weights, in_shapes, flatten_from=None):
        self.name, self.cls, self.cfg = name, cls, cfg
        self.weights = weights
        self.in_shapes = in_shapes
        self.flatten_from = flatten_from  # (C, H, W) when the input is a Keras Flatten of that map
        self.used = set()

    def err(self, msg) -> LarqImportError:
        return LarqImportError(f"layer {self.name!r} ({self.cls}): {msg}")

    def shape(self):
        if len(self.in_shapes) != 1:
            raise self.err(f"expects one input, got {len(self.in_shapes)}")
        return self.in_shapes[0]

    def w(self, key, shape=None, optional=False):
        if key not in self.weights:
            if optional:
                return None
            have = ", ".join(sorted(self.weights)) or "none"
            raise self.err(f"missing weight {key!r} (the file has: {have})")
        a = self.weights[key]
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise self.err(f"weight {key!r} has shape {list(a.shape)}, expected {list(shape)}")
        self.used.add(key)
        return a


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _pair(v, what, ctx):
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return (int(v[0]), int(v[1]))
    raise ctx.err(f"{what} {v!r} is not an int or a pair of ints")


def _channels_last(ctx):
    fmt = ctx.cfg.get("data_format") or "channels_last"
    if fmt != "channels_last":
        raise ctx.err(f"data_format {fmt!r}: only channels_last (Keras' default) is supported")


def same_pads(size, k, s, d=1):
    """Keras / Larq ``"same"`` padding of one dimension: (before, after), the odd one after."""
    eff = (k - 1) * d + 1
    out = (size + s - 1) // s
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _pads(ctx, padding, hw, kernel, strides, dilation):
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding != "same":
        raise ctx.err(f"padding {padding!r}: valid and same are supported")
    t, b = same_pads(hw[0], kernel[0], strides[0], dilation[0])
    left, r = same_pads(hw[1], kernel[1], strides[1], dilation[1])
    return (t, b, left, r)


_ACTS = {
    "linear": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "elu": nn.ELU, "selu": nn.SELU, "softplus": nn.Softplus, "softsign": nn.Softsign,
    "swish": nn.SiLU, "silu": nn.SiLU, "gelu": nn.GELU, "hard_tanh": nn.Hardtanh,
    "hard_sigmoid": M.HardSigmoid, "relu6": nn.ReLU6,
}


def activation(ctx, spec) -> nn.Module | None:
    """The module of a Keras activation name (``None`` for linear)."""
    if isinstance(spec, dict):  # a serialized function: {"class_name": "function", "config": "relu"}
        cfg = spec.get("config")
        spec = cfg if isinstance(cfg, str) else (cfg or {}).get("name", spec.get("class_name"))
    if spec is None or spec == "linear":
        return None
    name = str(spec).split(">")[-1]
    if name == "softmax":
        return nn.Softmax(dim=1)
    if name not in _ACTS:
        raise ctx.err(f"activation {spec!r} is not supported (supported: softmax, {', '.join(sorted(_ACTS))})")
    return _ACTS[name]()


def _with_act(ctx, mod):
    act = activation(ctx, ctx.cfg.get("activation"))
    return mod if act is None else nn.Sequential(mod, act)


# ----------------------------------------------------------------------------- convolutions

def _conv(ctx, depthwise: bool, quant: bool):
    from onebit.nn.layers import BinaryConv2d

    _channels_last(ctx)
    cfg = ctx.cfg
    shape = ctx.shape()
    if len(shape) != 3:
        raise ctx.err(f"input of shape {list(shape)} is not a feature map")
    cin, h, w = shape
    k = _pair(cfg.get("kernel_size"), "kernel_size", ctx)
    s = _pair(cfg.get("strides", 1), "strides", ctx)
    d = _pair(cfg.get("dilation_rate", 1), "dilation_rate", ctx)
    if d != (1, 1) and s != (1, 1):
        raise ctx.err("dilation together with a stride is not supported by Keras either")
    groups = int(cfg.get("groups", 1) or 1)
    if depthwise:
        mult = int(cfg.get("depth_multiplier", 1))
        kernel = ctx.w("depthwise_kernel", (k[0], k[1], cin, mult))
        cout, groups = cin * mult, cin
        # (kh, kw, cin, mult) -> (cin*mult, 1, kh, kw), output channel c*mult + m (Keras' order)
        weight = kernel.transpose(2, 3, 0, 1).reshape(cout, 1, k[0], k[1])
    else:
        cout = int(cfg["filters"])
        if cin % groups:
            raise ctx.err(f"{cin} input channels are not divisible by groups={groups}")
        kernel = ctx.w("kernel", (k[0], k[1], cin // groups, cout))
        weight = kernel.transpose(3, 2, 0, 1)
    use_bias = bool(cfg.get("use_bias", True))
    bias = ctx.w("bias", (cout,)) if use_bias else None

    in_kind, in_cfg, w_kind, w_cfg = None, {}, None, {}
    if quant:
        in_kind, in_cfg = Q.resolve(cfg.get("input_quantizer"), ctx.name, "input_quantizer")
        wkey = "depthwise_quantizer" if depthwise else "kernel_quantizer"
        w_kind, w_cfg = Q.resolve(cfg.get(wkey), ctx.name, wkey)
        if in_kind == "magnitude_aware_sign":
            raise ctx.err("magnitude_aware_sign as input_quantizer: only weights carry its scale in onebit")
        w_kind = _noop_kernel(ctx, w_kind, w_cfg, weight)
    pad_value = float(cfg.get("pad_values", 0.0) or 0.0) if quant else 0.0
    pads = _pads(ctx, cfg.get("padding", "valid"), (h, w), k, s, d)
    symmetric = pads[0] == pads[1] and pads[2] == pads[3] and (pad_value == 0.0 or sum(pads) == 0)
    binary = w_kind is not None or in_kind is not None
    # a binary conv pads its (quantized) input with 0 or +1 itself (BinaryConv2d's pad_value,
    # padding_end); a float conv with uneven "same" padding reads a ZeroPad2d
    own = symmetric or (binary and pad_value in (0.0, 1.0))
    padding = (pads[0], pads[2]) if own else 0

    if w_kind is None and in_kind is None:
        conv = nn.Conv2d(cin, cout, k, s, padding, d, groups, bias=use_bias)
    else:
        scale = None
        if w_kind in _SCALED:
            if depthwise:
                raise ctx.err(f"{w_kind} on a depthwise kernel scales per depth multiplier, "
                              "not per output channel: no exact onebit equivalent")
            scale = "channel"
        wq = Q.module_for(w_kind, w_cfg)
        clip = _clip_latent(w_kind, weight)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            conv = BinaryConv2d(cin, cout, k, s, padding, d, groups, bias=use_bias,
                                input_quantizer=Q.module_for(in_kind, in_cfg), weight_quantizer=wq,
                                clip_latent=clip, scale=scale, pad_value=int(pad_value) if own else 0,
                                padding_end=(pads[1], pads[3]) if own and not symmetric else None)
    with torch.no_grad():
        conv.weight.copy_(_t(weight))
        if bias is not None:
            conv.bias.copy_(_t(bias))
    if not own:
        if binary:  # pad_values other than 0 and 1: Larq pads the quantized input with it
            conv = M.PaddedConv(conv, *pads, value=pad_value)
        else:
            conv = nn.Sequential(nn.ZeroPad2d((pads[2], pads[3], pads[0], pads[1])), conv)
    return _with_act(ctx, conv)


_SCALED = ("magnitude_aware_sign", "xnor_weight_scale")


def _clip_latent(w_kind, weight) -> bool:
    """Clamp latent weights to [-1, 1] where that is exact: it changes no sign, but it changes a
    float kernel, and magnitude_aware_sign's scale when some |w| > 1 (xnor_weight_scale clips
    before its scale, as onebit's ``scale="channel"`` with clipping does)."""
    if w_kind is None:
        return False
    if w_kind == "magnitude_aware_sign":
        return float(np.abs(weight).max(initial=0)) <= 1.0
    return True


def _noop_kernel(ctx, kind, cfg, weight):
    """Larq's NoOp passes weights through: exact as ste_sign when they already are +-1."""
    if kind == "noop" and int(cfg.get("precision", 32)) == 1 and np.isin(weight, (-1.0, 1.0)).all():
        return "ste_sign"
    return None if kind == "noop" else kind


def conv2d(ctx):
    return _conv(ctx, depthwise=False, quant=False)


def depthwise_conv2d(ctx):
    return _conv(ctx, depthwise=True, quant=False)


def quant_conv2d(ctx):
    return _conv(ctx, depthwise=False, quant=True)


def quant_depthwise_conv2d(ctx):
    return _conv(ctx, depthwise=True, quant=True)


# ----------------------------------------------------------------------------- dense

def _dense(ctx, quant: bool):
    from onebit.nn.layers import BinaryLinear

    shape = ctx.shape()
    if len(shape) != 1:
        raise ctx.err(f"input of shape {list(shape)} (NCHW): Dense over a feature map's last axis is "
                      f"not supported; flatten or pool first")
    fin, fout = shape[0], int(ctx.cfg["units"])
    kernel = ctx.w("kernel", (fin, fout))
    if ctx.flatten_from is not None:
        # Keras flattened NHWC (index (h*W + w)*C + c); the module flattens NCHW: permute the rows
        c, h, w = ctx.flatten_from
        kernel = kernel.reshape(h, w, c, fout).transpose(2, 0, 1, 3).reshape(fin, fout)
    weight = kernel.T
    use_bias = bool(ctx.cfg.get("use_bias", True))
    bias = ctx.w("bias", (fout,)) if use_bias else None
    in_kind, in_cfg, w_kind, w_cfg = None, {}, None, {}
    if quant:
        in_kind, in_cfg = Q.resolve(ctx.cfg.get("input_quantizer"), ctx.name, "input_quantizer")
        w_kind, w_cfg = Q.resolve(ctx.cfg.get("kernel_quantizer"), ctx.name, "kernel_quantizer")
        if in_kind == "magnitude_aware_sign":
            raise ctx.err("magnitude_aware_sign as input_quantizer: only weights carry its scale in onebit")
        w_kind = _noop_kernel(ctx, w_kind, w_cfg, weight)
    if in_kind is None and w_kind is None:
        lin = nn.Linear(fin, fout, bias=use_bias)
    else:
        scale = "channel" if w_kind in _SCALED else None
        clip = _clip_latent(w_kind, weight)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lin = BinaryLinear(fin, fout, bias=use_bias, input_quantizer=Q.module_for(in_kind, in_cfg),
                               weight_quantizer=Q.module_for(w_kind, w_cfg), clip_latent=clip, scale=scale)
    with torch.no_grad():
        lin.weight.copy_(_t(weight))
        if bias is not None:
            lin.bias.copy_(_t(bias))
    return _with_act(ctx, lin)


def dense(ctx):
    return _dense(ctx, quant=False)


def quant_dense(ctx):
    return _dense(ctx, quant=True)


# ----------------------------------------------------------------------------- normalization

def batch_norm(ctx):
    shape = ctx.shape()
    axis = ctx.cfg.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise ctx.err(f"axis {axis}: one channel axis is supported")
        axis = axis[0]
    rank = len(shape) + 1
    if axis not in (-1, rank - 1):
        raise ctx.err(f"axis {axis}: normalization over the channel (last) axis is supported")
    c = shape[0]
    bn = nn.BatchNorm2d(c, eps=float(ctx.cfg.get("epsilon", 1e-3))) if len(shape) == 3 else \
        nn.BatchNorm1d(c, eps=float(ctx.cfg.get("epsilon", 1e-3)))
    if len(shape) not in (1, 3):
        raise ctx.err(f"input of shape {list(shape)} is not supported")
    with torch.no_grad():
        if ctx.cfg.get("scale", True):
            bn.weight.copy_(_t(ctx.w("gamma", (c,))))
        if ctx.cfg.get("center", True):
            bn.bias.copy_(_t(ctx.w("beta", (c,))))
        bn.running_mean.copy_(_t(ctx.w("moving_mean", (c,))))
        var = ctx.w("moving_variance", (c,))
        if (var < 0).any():
            raise ctx.err("moving_variance has negative entries")
        bn.running_var.copy_(_t(var))
    return bn


def normalization(ctx):
    shape = ctx.shape()
    axis = ctx.cfg.get("axis", -1)
    if isinstance(axis, list):
        axis = axis[0] if len(axis) == 1 else None
    if axis not in (-1, len(shape)) or ctx.cfg.get("invert", False):
        raise ctx.err(f"axis {axis} / invert: per-channel normalization over the last axis is supported")
    c = shape[0]
    mean, var = ctx.w("mean"), ctx.w("variance")
    if mean.size != c or var.size != c:
        raise ctx.err(f"mean/variance have {mean.size}/{var.size} entries for {c} channels")
    ctx.used.add("count")
    return M.Normalization(mean, var)


def rescaling(ctx):
    scale, offset = ctx.cfg.get("scale", 1.0), ctx.cfg.get("offset", 0.0)
    if not isinstance(scale, (int, float)) or not isinstance(offset, (int, float)):
        raise ctx.err("per-channel scale/offset is not supported (scalars only)")
    return M.Rescaling(scale, offset)


# ----------------------------------------------------------------------------- pooling

def _pool(ctx, kind):
    _channels_last(ctx)
    shape = ctx.shape()
    if len(shape) != 3:
        raise ctx.err(f"input of shape {list(shape)} is not a feature map")
    k = _pair(ctx.cfg.get("pool_size", 2), "pool_size", ctx)
    s = ctx.cfg.get("strides")
    s = k if s is None else _pair(s, "strides", ctx)
    pads = _pads(ctx, ctx.cfg.get("padding", "valid"), shape[1:], k, s, (1, 1))
    p = (pads[0], pads[2])
    # uneven "same" (the extra row/column after the input): torch's ceil_mode has the same windows
    # when it gives Keras' output size, the padding before the input is at most half the window
    # and the windows' taps past the input are ignored (max) / not counted (average) alike
    ceil = not (pads[0] == pads[1] and pads[2] == pads[3])
    if ceil and not all(2 * p[i] <= k[i] and output_size(shape[1 + i], k[i], s[i], p[i], True) ==
                        output_size(shape[1 + i], k[i], s[i], p[i], padding_end=pads[1 + 2 * i])
                        for i in (0, 1)):
        return M.KerasPool2d(kind, k, s, *pads)
    if kind == "max":
        return nn.MaxPool2d(k, s, p, ceil_mode=ceil)
    return nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=False)


def max_pool(ctx):
    return _pool(ctx, "max")


def avg_pool(ctx):
    return _pool(ctx, "avg")


def global_avg_pool(ctx):
    _channels_last(ctx)
    if len(ctx.shape()) != 3:
        raise ctx.err("input is not a feature map")
    keep = bool(ctx.cfg.get("keepdims", False))
    return nn.AdaptiveAvgPool2d(1) if keep else nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def global_max_pool(ctx):
    _channels_last(ctx)
    if len(ctx.shape()) != 3:
        raise ctx.err("input is not a feature map")
    keep = bool(ctx.cfg.get("keepdims", False))
    return nn.AdaptiveMaxPool2d(1) if keep else nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())


# ----------------------------------------------------------------------------- shapes, merges

def flatten(ctx):
    _channels_last(ctx)
    shape = ctx.shape()
    if len(shape) == 3 and ctx.flatten_from is None and shape[1] * shape[2] > 1:
        return M.NHWCFlatten()
    return nn.Flatten()  # a 1x1 map: NCHW and NHWC orders are the same


def reshape(ctx):
    target = ctx.cfg.get("target_shape")
    if not isinstance(target, (list, tuple)) or any(not isinstance(v, int) or v < 1 for v in target):
        raise ctx.err(f"target_shape {target!r}: explicit positive sizes are supported")
    if math.prod(target) != math.prod(ctx.shape()):
        raise ctx.err(f"target_shape {list(target)} does not hold the {math.prod(ctx.shape())} input values")
    return M.Reshape(target)


def zero_padding(ctx):
    _channels_last(ctx)
    p = ctx.cfg.get("padding", 1)
    if isinstance(p, int):
        t = b = left = r = p
    elif isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, int) for v in p):
        t = b = p[0]
        left = r = p[1]
    elif isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, (list, tuple)) for v in p):
        (t, b), (left, r) = p
    else:
        raise ctx.err(f"padding {p!r} is not understood")
    return nn.ZeroPad2d((left, r, t, b))


def dropout(ctx):
    return nn.Dropout(float(ctx.cfg.get("rate", 0.0)))


def identity(ctx):
    return nn.Identity()


def _merge(op):
    def build(ctx):
        if len(ctx.in_shapes) < 2:
            raise ctx.err("needs at least two inputs")
        shapes = [list(s) for s in ctx.in_shapes]
        # equal ranks broadcast alike in NHWC and NCHW (the axes are permuted together); a lower
        # rank would align with the last axis, which is W in NCHW, not C
        ok = len({len(s) for s in shapes}) == 1
        if ok:
            try:
                torch.broadcast_shapes(*[tuple(s) for s in shapes])
            except RuntimeError:
                ok = False
        if not ok:
            raise ctx.err(f"inputs of shapes {shapes} (NCHW) do not broadcast (equal ranks, sizes equal or 1)")
        return M.Merge(op)
    return build


def concatenate(ctx):
    rank = len(ctx.in_shapes[0]) + 1
    axis = int(ctx.cfg.get("axis", -1))
    axis = axis + rank if axis < 0 else axis
    dim = {1: 2, 2: 3, 3: 1}.get(axis) if rank == 4 else axis
    if dim is None or dim == 0:
        raise ctx.err(f"axis {ctx.cfg.get('axis')}: concatenation along the batch is not supported")
    return M.Concatenate(dim)


def activation_layer(ctx):
    return activation(ctx, ctx.cfg.get("activation")) or nn.Identity()


def relu(ctx):
    mx = ctx.cfg.get("max_value")
    slope = float(ctx.cfg.get("negative_slope", 0.0) or 0.0)
    thr = float(ctx.cfg.get("threshold", 0.0) or 0.0)
    if thr != 0.0 or (slope != 0.0 and mx is not None):
        raise ctx.err("threshold != 0, or a negative slope together with max_value, is not supported")
    if slope != 0.0:
        return nn.LeakyReLU(slope)
    return nn.ReLU() if mx is None else nn.Hardtanh(0.0, float(mx))


def leaky_relu(ctx):
    return nn.LeakyReLU(float(ctx.cfg.get("alpha", 0.3)))


def softmax_layer(ctx):
    axis = ctx.cfg.get("axis", -1)
    if axis not in (-1, len(ctx.shape())):
        raise ctx.err(f"axis {axis}: softmax over the last (channel) axis is supported")
    return nn.Softmax(dim=1)


def prelu(ctx):
    shape = ctx.shape()
    shared = ctx.cfg.get("shared_axes") or []
    shared = sorted(int(a) for a in (shared if isinstance(shared, list) else [shared]))
    keras_shape = (shape[1], shape[2], shape[0]) if len(shape) == 3 else tuple(shape)
    want = tuple(1 if i + 1 in shared else v for i, v in enumerate(keras_shape))
    alpha = ctx.w("alpha", want)
    c = shape[0]
    if len(shape) == 1 or (len(shape) == 3 and shared == [1, 2]):
        m = nn.PReLU(c)
        with torch.no_grad():
            m.weight.copy_(_t(alpha.reshape(-1)))
        return m
    if len(shape) == 3:
        return M.FullPReLU(alpha.transpose(2, 0, 1)[None])
    raise ctx.err(f"input of shape {list(shape)} is not supported")


BUILDERS = {
    "QuantConv2D": quant_conv2d, "QuantDepthwiseConv2D": quant_depthwise_conv2d, "QuantDense": quant_dense,
    "Conv2D": conv2d, "DepthwiseConv2D": depthwise_conv2d, "Dense": dense,
    "BatchNormalization": batch_norm, "Normalization": normalization, "Rescaling": rescaling,
    "MaxPooling2D": max_pool, "MaxPool2D": max_pool, "AveragePooling2D": avg_pool, "AvgPool2D": avg_pool,
    "GlobalAveragePooling2D": global_avg_pool, "GlobalAvgPool2D": global_avg_pool,
    "GlobalMaxPooling2D": global_max_pool, "GlobalMaxPool2D": global_max_pool,
    "Flatten": flatten, "Reshape": reshape, "ZeroPadding2D": zero_padding,
    "Dropout": dropout, "SpatialDropout2D": dropout, "GaussianNoise": identity, "GaussianDropout": identity,
    "ActivityRegularization": identity, "Identity": identity,
    "Add": _merge("add"), "Subtract": _merge("subtract"), "Multiply": _merge("multiply"),
    "Average": _merge("average"), "Maximum": _merge("maximum"), "Minimum": _merge("minimum"),
    "Concatenate": concatenate, "Activation": activation_layer, "ReLU": relu, "LeakyReLU": leaky_relu,
    "Softmax": softmax_layer, "PReLU": prelu,
}

#: weights a layer may carry that the forward pass does not read (Normalization's sample count)
IGNORED_WEIGHTS = {"count"}
