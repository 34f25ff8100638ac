"""The engine graph: op types, their attributes and tensors, and shape inference (torch-free).

A graph is a list of ops in execution order. Every op reads named *values* (activations) and
writes one new value; a value is described by its kind and its per-sample shape (batch axis
excluded):

- ``u8``:   uint8 NHWC image ``[H, W, C]`` (the graph input only),
- ``bits``: packed binary NHWC ``[H, W, C]`` (stored as ``(N, H, W, ceil(C/64))`` uint64) or
  ``[C]`` after flatten (stored ``(N, ceil(C/64))``),
- ``int8``: NHWC int8 on the symmetric grid [-127, 127] with a per-tensor ``scale``,
- ``f32``:  float32 NHWC ``[H, W, C]`` or flat ``[C]``.

The same table drives the converter (which builds and checks a graph), the loader (which
validates a file against it, docs/format.md §7) and the executor. Anything that does not match
raises ``onebit.FormatError`` with the op name and the problem.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from onebit.bitplanes import MAX_WEIGHT_BITS, PLANE_BITS
from onebit.bits import num_words
from onebit.errors import FormatError
from onebit.runtime.geometry import output_size

KINDS = ("u8", "bits", "int8", "f32")
OUTPUT_STAGES = ("bits", "int8", "f32")
MAX_DIM = 1 << 20  # no axis of a supported network is longer; bounds every allocation
MAX_ELEMENTS = 1 << 26  # per-sample elements of one value (the largest zoo value at 224 px: 0.8 M)
MAX_TOTAL_ELEMENTS = 1 << 28  # per-sample elements of all values: bounds the Session's buffers
INT16_MAX_K = 32767  # a binary dot over K <= 32767 bits is exact in int16 (docs/format.md §4)
MASK_ROLE = "weight_mask"  # optional tensor of a pruned bconv2d / bdense (docs/format.md §7.3)
WORD_MASK_ROLE = "weight_word_mask"  # its compact form: one bit per (output channel, packed word)
MASK_ROLES = (MASK_ROLE, WORD_MASK_ROLE)  # a pruned op carries exactly one of them
KEPT_ROLE = "weight_kept"  # a pruned op's weight bits at kept positions only, instead of "weight"


@dataclass
class Value:
    """An activation: kind, per-sample shape (no batch axis), int8 scale (int8 only)."""

    kind: str
    shape: tuple
    scale: float | None = None

    def to_json(self) -> dict:
        d = {"kind": self.kind, "shape": list(self.shape)}
        if self.scale is not None:
            d["scale"] = float(self.scale)
        return d


@dataclass
class Op:
    """One engine op. ``tensors`` maps a role (``weight``, ``threshold``...) to a file tensor name."""

    name: str
    type: str
    inputs: list
    output: str
    attrs: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.type, "inputs": list(self.inputs),
                "output": self.output, "attrs": dict(self.attrs), "tensors": dict(self.tensors)}


def _fail(op, msg: str):
    where = f"op {op.name!r} ({op.type})" if op is not None else "graph"
    raise FormatError(f"{where}: {msg}")


# ----------------------------------------------------------------------------- attribute checks

def _int(op, attrs, key, lo=None, hi=None):
    v = attrs.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        _fail(op, f"attribute {key!r} must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        _fail(op, f"attribute {key!r} = {v} outside [{lo}, {hi}]")
    return v


def _pair(op, attrs, key, lo, hi=MAX_DIM):
    v = attrs.get(key)
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(a, int) and not isinstance(a, bool)
                                                         for a in v)):
        _fail(op, f"attribute {key!r} must be a list of two integers, got {v!r}")
    if not all(lo <= a <= hi for a in v):
        _fail(op, f"attribute {key!r} = {v} outside [{lo}, {hi}]")
    return tuple(v)


def _float(op, attrs, key):
    v = attrs.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _fail(op, f"attribute {key!r} must be a finite number, got {v!r}")
    return float(v)


def _choice(op, attrs, key, choices):
    v = attrs.get(key)
    if isinstance(v, (dict, list, bool, float)) or v not in choices:
        _fail(op, f"attribute {key!r} must be one of {list(choices)}, got {v!r}")
    return v


# ----------------------------------------------------------------------------- per-op specs
# Each spec returns (output Value, {tensor role: (dtype, shape)}) given the op and its inputs.

def _stage(op, cout: int, k_bound: int | None):
    """Tensors and output kind of a fused output stage (docs/format.md §5)."""
    stage = _choice(op, op.attrs, "output", OUTPUT_STAGES)
    if stage == "bits":
        tens = {"threshold": ("int32", (cout,)), "direction": ("int8", (cout,))}
        scale = None
    elif stage == "int8":
        _int(op, op.attrs, "shift", 1, 31)
        scale = _float(op, op.attrs, "out_scale")
        if not scale > 0:
            _fail(op, f"attribute 'out_scale' must be > 0, got {scale}")
        tens = {"multiplier": ("int32", (cout,)), "bias": ("int32", (cout,))}
    else:
        tens = {"scale": ("float32", (cout,)), "bias": ("float32", (cout,))}
        scale = None
    return stage, tens, scale


def _spatial(op, x: Value):
    if len(x.shape) != 3:
        _fail(op, f"input must be an NHWC feature map [H, W, C], got shape {list(x.shape)}")
    return x.shape


def _conv_geometry(op, x: Value):
    h, w, cin = _spatial(op, x)
    a = op.attrs
    if _int(op, a, "in_channels", 1, MAX_DIM) != cin:
        _fail(op, f"attribute in_channels = {a['in_channels']} but the input has {cin} channels")
    cout = _int(op, a, "out_channels", 1, MAX_DIM)
    kh, kw = _pair(op, a, "kernel", 1)
    sh, sw = _pair(op, a, "stride", 1)
    ph, pw = _pair(op, a, "padding", 0)
    if ph >= kh or pw >= kw:
        _fail(op, f"padding {[ph, pw]} must be smaller than the kernel {[kh, kw]}")
    eh, ew = _pair(op, a, "padding_end", 0) if "padding_end" in a else (ph, pw)  # bottom, right
    if eh >= kh or ew >= kw:
        _fail(op, f"padding_end {[eh, ew]} must be smaller than the kernel {[kh, kw]}")
    oh, ow = output_size(h, kh, sh, ph, padding_end=eh), output_size(w, kw, sw, pw, padding_end=ew)
    if oh < 1 or ow < 1:
        _fail(op, f"kernel {[kh, kw]} with padding {[ph, pw]} does not fit the input {h}x{w}")
    return (oh, ow, cout), (kh, kw, cin, cout)


_KIND_NAMES = {"bits": "bits", "int8": "int8", "f32": "float32"}


def _input(op, xs, *kinds):
    """The op's single input value, of one of ``kinds`` (else the op's error naming them)."""
    (x,) = xs
    if x.kind not in kinds:
        names = [_KIND_NAMES[k] for k in kinds]
        want = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        _fail(op, f"input must be {want}, got {x.kind}")
    return x


def _spec_bconv2d(op, xs):
    x = _input(op, xs, "bits")
    out_shape, (kh, kw, cin, cout) = _conv_geometry(op, x)
    if "pad_value" in op.attrs:
        _int(op, op.attrs, "pad_value", 0, 1)  # 0: true zero, 1: +1 (docs/format.md §3)
    k = kh * kw * cin
    bound = _accumulator(op, k, "kh*kw*Cin")
    stage, tens, scale = _stage(op, cout, bound)
    _weight_spec(op, tens, (cout, kh, kw, num_words(cin)), k)
    return Value(stage, out_shape, scale), tens


def _weight_spec(op, tens: dict, shape: tuple, k: int):
    """The weight and mask tensors of a binary op of packed weight ``shape`` (docs/format.md §2,
    §7.3): ``weight``, or in a pruned op ``weight_kept`` ``(ceil(kept_weights/64),)``; and the
    mask of a pruned op: ``weight_mask`` of the weight's shape, or the compact
    ``weight_word_mask`` ``(Cout, ceil(P/64))``, one bit per packed weight word (``P`` per output
    channel). Never both masks, never both weight forms."""
    cout = shape[0]
    roles = [r for r in MASK_ROLES if r in op.tensors]
    if len(roles) > 1:
        _fail(op, f"has both {MASK_ROLE!r} and {WORD_MASK_ROLE!r}: a pruned op carries exactly one mask")
    if MASK_ROLE in op.tensors:
        tens[MASK_ROLE] = ("uint64", shape)
    elif WORD_MASK_ROLE in op.tensors:
        tens[WORD_MASK_ROLE] = ("uint64", (cout, num_words(math.prod(shape[1:]))))
    if KEPT_ROLE in op.tensors:
        if "weight" in op.tensors:
            _fail(op, f"has both 'weight' and {KEPT_ROLE!r}: the weights are stored once")
        if not roles:
            _fail(op, f"{KEPT_ROLE!r} needs a mask ({MASK_ROLE!r} or {WORD_MASK_ROLE!r}) to place its weights")
        n = _int(op, op.attrs, "kept_weights", 0, cout * k)
        tens[KEPT_ROLE] = ("uint64", (num_words(n),))
    else:
        tens["weight"] = ("uint64", shape)


def weight_shape(op) -> tuple:
    """The packed weight shape of a (validated) ``bconv2d`` / ``bdense`` (docs/format.md §2)."""
    a = op.attrs
    if op.type == "bconv2d":
        return (a["out_channels"], a["kernel"][0], a["kernel"][1], num_words(a["in_channels"]))
    return (a["out_features"], num_words(a["in_features"]))


def _accumulator(op, k: int, what: str) -> int:
    """The recorded bound must be K (``what``) and the width must hold [-bound, bound] exactly.

    A pruned op (one with a ``weight_mask`` or ``weight_word_mask`` tensor) records the largest
    number of kept weights of one output channel instead, in [0, K]; the loader checks it against
    the mask's contents.
    """
    masked = any(r in op.tensors for r in MASK_ROLES)
    bound = _int(op, op.attrs, "accumulator_bound", 0 if masked else 1, MAX_ELEMENTS)
    if masked and bound > k:
        _fail(op, f"accumulator_bound = {bound} exceeds {what} = {k}")
    if not masked and bound != k:
        _fail(op, f"accumulator_bound = {bound} but {what} = {k}")
    bits = _choice(op, op.attrs, "accumulator_bits", (16, 32))
    if bits == 16 and bound > INT16_MAX_K:
        _fail(op, f"accumulator_bits = 16 cannot hold a dot product over K = {bound} > {INT16_MAX_K} bits")
    return bound


def _dense_features(op, x, kind, kind_name):
    """(in_features, out_features) of a dense op whose input must be a flat ``kind`` vector."""
    if x.kind != kind or len(x.shape) != 1:
        _fail(op, f"input must be flat {kind_name} [C], got {x.kind} {list(x.shape)}")
    cin = x.shape[0]
    if _int(op, op.attrs, "in_features", 1, MAX_ELEMENTS) != cin:
        _fail(op, f"attribute in_features = {op.attrs['in_features']} but the input has {cin}")
    return cin, _int(op, op.attrs, "out_features", 1, MAX_DIM)


def _spec_bdense(op, xs):
    (x,) = xs
    cin, cout = _dense_features(op, x, "bits", "bits")
    bound = _accumulator(op, cin, "in_features")
    stage, tens, scale = _stage(op, cout, bound)
    _weight_spec(op, tens, (cout, num_words(cin)), cin)
    return Value(stage, (cout,), scale), tens


def _spec_conv2d_u8(op, xs):
    (x,) = xs
    if x.kind != "u8":
        _fail(op, f"input must be the uint8 image, got {x.kind}")
    out_shape, (kh, kw, cin, cout) = _conv_geometry(op, x)
    stage, tens, scale = _stage(op, cout, None)
    tens["weight"] = ("int8", (cout, kh, kw, cin))
    tens["zero_point"] = ("int32", (cin,))
    return Value(stage, out_shape, scale), tens


def _spec_bitplanes(op, xs):
    """u8 image [H, W, C] -> bits [H, W, P]: the CBNN bit planes listed in ``planes`` (plane id
    c*8 + b, b = 0 the LSB, sorted and unique; plane +1 where bit b of channel c is 1)."""
    (x,) = xs
    if x.kind != "u8":
        _fail(op, f"input must be the uint8 image, got {x.kind}")
    h, w, c = _spatial(op, x)
    planes = op.attrs.get("planes")
    if not (isinstance(planes, list) and planes
            and all(isinstance(p, int) and not isinstance(p, bool) for p in planes)):
        _fail(op, f"attribute 'planes' must be a non-empty list of plane ids, got {planes!r}")
    if not all(0 <= p < PLANE_BITS * c for p in planes):
        _fail(op, f"plane ids {planes} outside [0, {PLANE_BITS * c - 1}] (a {c}-channel image has "
                  f"{PLANE_BITS * c} bit planes)")
    if any(b <= a for a, b in zip(planes, planes[1:])):
        _fail(op, f"plane ids {planes} must be strictly increasing")
    return Value("bits", (h, w, len(planes))), {}


def _spec_bconv2d_planes(op, xs):
    """Binary conv with multi-bit weights: ``weight_bits`` M planes of +-1 weights, plane j
    weighted 2^j (odd integer weights in [-(2^M-1), 2^M-1]); ``y = sum_j 2^j * y_j``."""
    x = _input(op, xs, "bits")
    out_shape, (kh, kw, cin, cout) = _conv_geometry(op, x)
    m = _int(op, op.attrs, "weight_bits", 1, MAX_WEIGHT_BITS)
    k = ((1 << m) - 1) * kh * kw * cin
    bound = _accumulator(op, k, "(2^weight_bits - 1)*kh*kw*Cin")
    stage, tens, scale = _stage(op, cout, bound)
    layout = op.attrs.get("weight_layout", "taps")  # docs/format.md "Bit-plane input"
    if layout == "window":
        tens["weight"] = ("uint64", (m, cout, num_words(kh * kw * cin)))
    elif layout == "taps":
        tens["weight"] = ("uint64", (m, cout, kh, kw, num_words(cin)))
    else:
        _fail(op, f"attribute 'weight_layout' must be 'taps' or 'window', got {layout!r}")
    return Value(stage, out_shape, scale), tens


def _spec_maxpool2d(op, xs):
    x = _input(op, xs, "bits", "int8", "f32")
    h, w, c = _spatial(op, x)
    kh, kw = _pair(op, op.attrs, "kernel", 1)
    sh, sw = _pair(op, op.attrs, "stride", 1)
    ph, pw = _pair(op, op.attrs, "padding", 0)
    if 2 * ph > kh or 2 * pw > kw:
        _fail(op, f"padding {[ph, pw]} must be at most half the kernel {[kh, kw]}")
    ceil = op.attrs.get("ceil_mode", False)
    if not isinstance(ceil, bool):
        _fail(op, f"attribute 'ceil_mode' must be true or false, got {ceil!r}")
    oh, ow = output_size(h, kh, sh, ph, ceil), output_size(w, kw, sw, pw, ceil)
    if oh < 1 or ow < 1:
        _fail(op, f"pooling window {[kh, kw]} does not fit the input {h}x{w}")
    return Value(x.kind, (oh, ow, c), x.scale), {}


def _spec_flatten(op, xs):
    (x,) = xs
    if x.kind == "u8":
        _fail(op, "cannot flatten the uint8 image")
    if x.kind == "bits" and len(x.shape) == 3 and x.shape[0] * x.shape[1] != 1 and x.shape[2] % 64:
        # packed words hold padding bits per pixel: a flat view is only the NHWC flatten when
        # there are none (the converter uses a full-size bconv2d instead)
        _fail(op, f"bits of shape {list(x.shape)} cannot be flattened (C % 64 != 0)")
    return Value(x.kind, (int(np.prod(x.shape)),), x.scale), {}


def _spec_dense_f32(op, xs):
    (x,) = xs
    cin, cout = _dense_features(op, x, "f32", "float32")
    return Value("f32", (cout,)), {"weight": ("float32", (cout, cin)), "bias": ("float32", (cout,))}


def _spec_clamp_f32(op, xs):
    x = _input(op, xs, "f32")
    if "lower" in op.tensors or "upper" in op.tensors:  # per channel (the last axis): tensors, no attributes
        if "min" in op.attrs or "max" in op.attrs:
            _fail(op, "per-channel bounds (tensors 'lower', 'upper') and the attributes 'min' / 'max' "
                      "exclude each other")
        c = x.shape[-1]
        return Value("f32", x.shape), {"lower": ("float32", (c,)), "upper": ("float32", (c,))}
    lo, hi = _float(op, op.attrs, "min"), _float(op, op.attrs, "max")
    if not lo < hi:
        _fail(op, f"min {lo} must be smaller than max {hi}")
    return Value("f32", x.shape), {}


def _spec_affine_f32(op, xs):
    x = _input(op, xs, "f32")
    c = x.shape[-1]
    return Value("f32", x.shape), {"scale": ("float32", (c,)), "bias": ("float32", (c,))}


def _spec_prelu_f32(op, xs):
    x = _input(op, xs, "f32")
    return Value("f32", x.shape), {"slope": ("float32", (x.shape[-1],))}


def _spec_sigmoid_f32(op, xs):
    x = _input(op, xs, "f32")
    return Value("f32", x.shape), {}


def _spec_mul_channels_f32(op, xs):
    x, g = xs
    if x.kind != "f32" or g.kind != "f32" or len(g.shape) != 1 or g.shape[0] != x.shape[-1]:
        _fail(op, f"inputs must be a float32 value with C channels (the last axis) and a float32 vector "
                  f"[C], got {x.kind} {list(x.shape)} and {g.kind} {list(g.shape)}")
    return Value("f32", x.shape), {}


def _spec_dequantize(op, xs):
    x = _input(op, xs, "int8")
    return Value("f32", x.shape), {}


def _spec_bitpack(op, xs):
    x = _input(op, xs, "int8", "f32")
    return Value("bits", x.shape), {}


def _spec_conv2d_i8(op, xs):
    x = _input(op, xs, "int8")
    out_shape, (kh, kw, cin, cout) = _conv_geometry(op, x)
    stage, tens, scale = _stage(op, cout, None)
    tens["weight"] = ("int8", (cout, kh, kw, cin))
    return Value(stage, out_shape, scale), tens


def _spec_dwconv2d_i8(op, xs):
    f32 = op.type == "dwconv2d_f32"
    x = _input(op, xs, "f32" if f32 else "int8")
    out_shape, (kh, kw, cin, cout) = _conv_geometry(op, x)
    if cout != cin:
        _fail(op, f"a depthwise convolution keeps the channels: out_channels = {cout} but in_channels = {cin}")
    if kh * kw * 128 * 128 > 2**31 - 1:
        _fail(op, f"kernel {[kh, kw]} can overflow the int32 accumulator (kh*kw*128*128 > 2^31 - 1)")
    if f32:
        return Value("f32", out_shape), {"weight": ("float32", (kh, kw, cin)), "bias": ("float32", (cin,))}
    stage, tens, scale = _stage(op, cout, None)
    tens["weight"] = ("int8", (kh, kw, cin))
    return Value(stage, out_shape, scale), tens


def _spec_conv2d_f32(op, xs):
    (x,) = xs
    if x.kind not in ("f32", "u8"):
        _fail(op, f"input must be float32 or the uint8 image, got {x.kind}")
    out_shape, (kh, kw, cin, cout) = _conv_geometry(op, x)
    groups = _int(op, op.attrs, "groups", 1, MAX_DIM) if "groups" in op.attrs else 1
    if cin % groups or cout % groups:
        _fail(op, f"attribute groups = {groups} must divide in_channels ({cin}) and out_channels ({cout})")
    tens = {"weight": ("float32", (cout, kh, kw, cin // groups)), "bias": ("float32", (cout,))}
    if x.kind == "u8":
        tens.update(in_scale=("float32", (cin,)), in_offset=("float32", (cin,)))
    return Value("f32", out_shape), tens


def _spec_conv1x1_f32(op, xs):
    x = _input(op, xs, "f32")
    h, w, cin = _spatial(op, x)
    if _int(op, op.attrs, "in_channels", 1, MAX_DIM) != cin:
        _fail(op, f"attribute in_channels = {op.attrs['in_channels']} but the input has {cin} channels")
    cout = _int(op, op.attrs, "out_channels", 1, MAX_DIM)
    return Value("f32", (h, w, cout)), {"weight": ("float32", (cout, cin)), "bias": ("float32", (cout,))}


def _spec_avgpool2d(op, xs):
    x = _input(op, xs, "int8", "f32")
    v, t = _spec_maxpool2d(op, [Value("int8", x.shape, 1.0)])
    if not isinstance(op.attrs.get("count_include_pad"), bool):
        _fail(op, "attribute 'count_include_pad' must be true or false")
    return Value(x.kind, v.shape, x.scale), t


def _spec_global_avgpool(op, xs):
    x = _input(op, xs, "int8", "f32")
    h, w, c = _spatial(op, x)
    return Value("f32", (c,)), {}


def _spec_concat(op, xs):
    a, b = xs
    if a.kind != b.kind or a.kind == "u8" or len(a.shape) != 3 or len(b.shape) != 3 or a.shape[:2] != b.shape[:2]:
        _fail(op, f"inputs must be two int8, two float32 or two bits feature maps [H, W, C] of one H and W, "
                  f"got {a.kind} {list(a.shape)} and {b.kind} {list(b.shape)}")
    if a.kind == "int8" and a.scale != b.scale:
        _fail(op, f"int8 inputs must have one scale, got {a.scale!r} and {b.scale!r} "
                  f"(the converter requantizes one of them first)")
    return Value(a.kind, (a.shape[0], a.shape[1], a.shape[2] + b.shape[2]), a.scale), {}


def _spec_add(op, xs):
    a, b = xs
    if a.kind != b.kind or a.kind not in ("int8", "f32") or tuple(a.shape) != tuple(b.shape):
        _fail(op, f"inputs must be two int8 or two float32 values of one shape, got {a.kind} "
                  f"{list(a.shape)} and {b.kind} {list(b.shape)}")
    if a.kind == "f32":
        return Value("f32", a.shape), {}
    _int(op, op.attrs, "ma", -(2**31) + 1, 2**31 - 1)
    _int(op, op.attrs, "mb", -(2**31) + 1, 2**31 - 1)
    _int(op, op.attrs, "shift", 1, 31)
    scale = _float(op, op.attrs, "out_scale")
    if not scale > 0:
        _fail(op, f"attribute 'out_scale' must be > 0, got {scale}")
    return Value("int8", a.shape, scale), {}


SPECS = {
    "conv2d_i8": _spec_conv2d_i8,
    "conv1x1_f32": _spec_conv1x1_f32,
    "conv2d_f32": _spec_conv2d_f32,
    "avgpool2d": _spec_avgpool2d,
    "global_avgpool": _spec_global_avgpool,
    "add": _spec_add,
    "concat": _spec_concat,
    "bitpack": _spec_bitpack,
    "dequantize": _spec_dequantize,
    "conv2d_u8": _spec_conv2d_u8,
    "dwconv2d_i8": _spec_dwconv2d_i8,
    "dwconv2d_f32": _spec_dwconv2d_i8,
    "bconv2d": _spec_bconv2d,
    "bitplanes": _spec_bitplanes,
    "bconv2d_planes": _spec_bconv2d_planes,
    "bdense": _spec_bdense,
    "maxpool2d": _spec_maxpool2d,
    "flatten": _spec_flatten,
    "dense_f32": _spec_dense_f32,
    "clamp_f32": _spec_clamp_f32,
    "affine_f32": _spec_affine_f32,
    "prelu_f32": _spec_prelu_f32,
    "sigmoid_f32": _spec_sigmoid_f32,
    "mul_channels_f32": _spec_mul_channels_f32,
}


def _check_value(where, v: Value):
    if v.kind not in KINDS:
        raise FormatError(f"{where}: unknown value kind {v.kind!r} (known: {list(KINDS)})")
    if not (1 <= len(v.shape) <= 3) or not all(isinstance(d, int) and not isinstance(d, bool)
                                               and 1 <= d <= MAX_DIM for d in v.shape):
        raise FormatError(f"{where}: shape {list(v.shape)} must be 1 to 3 axes of 1..{MAX_DIM}")
    if math.prod(v.shape) > MAX_ELEMENTS:
        raise FormatError(f"{where}: shape {list(v.shape)} is too large")


def value_from_json(where: str, d) -> Value:
    if not isinstance(d, dict) or set(d) - {"kind", "shape", "scale"} or "kind" not in d or "shape" not in d:
        raise FormatError(f"{where}: must be an object with 'kind', 'shape' and optional 'scale'")
    shape = d["shape"]
    if not isinstance(shape, list):
        raise FormatError(f"{where}: shape must be a list")
    scale = d.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not math.isfinite(scale) or scale <= 0):
        raise FormatError(f"{where}: scale must be a positive finite number, got {scale!r}")
    v = Value(d["kind"] if isinstance(d["kind"], str) else repr(d["kind"]), tuple(shape),
              None if scale is None else float(scale))
    _check_value(where, v)
    return v


def op_from_json(i: int, d) -> Op:
    keys = {"name", "type", "inputs", "output", "attrs", "tensors"}
    if not isinstance(d, dict) or set(d) != keys:
        raise FormatError(f"graph op #{i}: must be an object with exactly the keys {sorted(keys)}")
    if not isinstance(d["name"], str) or not d["name"]:
        raise FormatError(f"graph op #{i}: name must be a non-empty string")
    if not isinstance(d["type"], str) or d["type"] not in SPECS:
        raise FormatError(f"graph op #{i} {d['name']!r}: unknown op type {d['type']!r} "
                          f"(known: {sorted(SPECS)})")
    if not (isinstance(d["inputs"], list) and all(isinstance(s, str) for s in d["inputs"])
            and isinstance(d["output"], str)):
        raise FormatError(f"graph op #{i} {d['name']!r}: inputs must be a list of names and output a name")
    if not isinstance(d["attrs"], dict):
        raise FormatError(f"graph op #{i} {d['name']!r}: attrs must be an object")
    if not (isinstance(d["tensors"], dict) and all(isinstance(s, str) for s in d["tensors"].values())):
        raise FormatError(f"graph op #{i} {d['name']!r}: tensors must map roles to tensor names")
    return Op(d["name"], d["type"], list(d["inputs"]), d["output"], dict(d["attrs"]), dict(d["tensors"]))


ARITY = {"conv2d_i8": 1, "conv2d_f32": 1, "conv1x1_f32": 1, "avgpool2d": 1, "global_avgpool": 1, "add": 2, "concat": 2, "bitpack": 1, "dequantize": 1, "conv2d_u8": 1, "dwconv2d_i8": 1, "dwconv2d_f32": 1, "bconv2d": 1, "bitplanes": 1, "bconv2d_planes": 1, "bdense": 1, "maxpool2d": 1, "flatten": 1,
         "dense_f32": 1, "clamp_f32": 1, "affine_f32": 1,
         "prelu_f32": 1, "sigmoid_f32": 1, "mul_channels_f32": 2}


def infer(ops: list, input_name: str, input_value: Value, declared: dict | None = None):
    """Check the graph and infer every value. Returns ({value name: Value}, {op name: tensor spec}).

    ``declared`` (from the file) must match the inferred values exactly. Inputs must be defined
    before use, names unique, and every value but the last is consumed (no dead ends).
    """
    if input_value.kind != "u8" or len(input_value.shape) != 3:
        raise FormatError(f"graph input must be a uint8 [H, W, C] image, got {input_value.kind} "
                          f"{list(input_value.shape)}")
    values = {input_name: input_value}
    specs = {}
    names = set()
    for op in ops:
        if op.name in names:
            _fail(op, "duplicate op name")
        names.add(op.name)
        if len(op.inputs) != ARITY[op.type]:
            _fail(op, f"takes {ARITY[op.type]} input(s), got {len(op.inputs)}")
        for i in op.inputs:
            if i not in values:
                _fail(op, f"input {i!r} is not defined before this op")
        if op.output in values:
            _fail(op, f"output {op.output!r} is already defined")
        out, tens = SPECS[op.type](op, [values[i] for i in op.inputs])
        if set(op.tensors) != set(tens):
            _fail(op, f"tensor roles {sorted(op.tensors)} do not match the required {sorted(tens)}")
        _check_value(f"op {op.name!r} output", out)
        if declared is not None:
            if op.output not in declared:
                _fail(op, f"output {op.output!r} is not declared in 'values'")
            d = declared[op.output]
            if (d.kind, tuple(d.shape)) != (out.kind, tuple(out.shape)) or \
                    (d.scale is None) != (out.scale is None) or \
                    (d.scale is not None and not math.isclose(d.scale, out.scale, rel_tol=0, abs_tol=0)):
                _fail(op, f"declared value {op.output!r} = {d.to_json()} but the op produces {out.to_json()}")
        values[op.output] = out
        specs[op.name] = {role: (dt, tuple(int(s) for s in shp)) for role, (dt, shp) in tens.items()}
    if not ops:
        raise FormatError("graph has no ops")
    total = sum(math.prod(v.shape) for v in values.values())
    if total > MAX_TOTAL_ELEMENTS:
        raise FormatError(f"graph: its values hold {total} elements per sample (limit {MAX_TOTAL_ELEMENTS})")
    used = {i for op in ops for i in op.inputs}
    for op in ops[:-1]:
        if op.output not in used:
            _fail(op, f"output {op.output!r} is never used")
    if declared is not None and set(declared) != set(values):
        extra = sorted(set(declared) - set(values))
        raise FormatError(f"graph: declared values {extra} are not produced by any op")
    return values, specs
