"""Torch model -> engine graph (ops + tensors), the converter's core.

The model is traced once with forward hooks on its leaf modules (a dummy input in eval mode),
which gives the layers in *execution* order together with their input/output tensors; the walk
then checks that each layer consumes exactly what the previous one produced (a functional op in
between — other than flatten — would be invisible, so it is an error naming both layers).

Layer grammar (the conversion-friendly order of the model zoo, docs/format.md §7.3):

    Conv2d [BN] act* pool* [ClipBlock] -> { BinaryConv2d | BinaryLinear } [BN] act* pool* [ClipBlock] -> ...
    (a depthwise Conv2d, groups = channels, reads int8 (after a ClipBlock) or float32 data: a producer
    like the others, dwconv2d_i8 or dwconv2d_f32)
    ... -> [Flatten] Linear [BN1d]           (float head)  or  ... BinaryLinear [BN1d]  (binary head)

with the classic order ``producer [BN] [act] pool BN act*`` as well (the BN after the pool folds
into the producer's stage; a channel whose BN scale is negative turns the max pool into a min
pool, stored negated and undone by the next binary layer's weights, :func:`onebit.convert.fold.
pooled_threshold_stage`), and a padding layer (``nn.ZeroPad2d`` / ``nn.ConstantPad2d``) right
before a convolution becomes its padding: before and after the input (``padding_end``), and, before
a binary conv, one-padding (``pad_value`` 1: the layer binarizes the padded 0 to +1).

Residual blocks of ``onebit.models.blocks`` (``BinaryResidualBlock``, ``TransitionBlock``) are
converted as units following the dataflow documented there, and ``AdaptiveAvgPool2d(1)`` becomes a
global average pool.

Each producer (float first conv, binary conv / dense) is fused with the affine map that follows
it (conv bias, XNOR scale, BN) into one output stage chosen by its consumer: sign -> bits
(threshold), ClipBlock -> int8 (fixed point), float Linear / logits -> float32 (see
:mod:`onebit.convert.fold`). Max pooling runs on bits or int8 after the stage: the model applies
it after BN, and max commutes with every non-decreasing map (sign, hardtanh, the clip block), so
``pool(sign(z)) == sign(pool(z))``. Flattening is implicit: a dense layer reading a feature map
flattens it (NHWC order on the engine side, weights permuted from PyTorch's NCHW order).

Pruned binary layers (a ``weight_mask`` with zeros, ``onebit.prune``) keep their op type: the mask
is permuted and packed like the weights and stored as the op's ``weight_word_mask`` tensor (one
bit per packed word) when every packed word is all kept or all pruned (word / block pruning),
else as its ``weight_mask`` tensor; only the kept weights' bits are stored (``weight_kept``) and
the accumulator bound is the largest kept count of an output channel (docs/format.md §7.3).
Channel-pruned models arrive already shrunk and need no mask.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from onebit import bits as _bits
from onebit.bitplanes import odd_weight_planes, pack_window_weights
from onebit.convert.fold import (ConversionError, bn_affine, first_layer, int8_stage, odd_weight_bits,
                                 pooled_threshold_stage, quantize_weights_int8, quantize_weights_odd,
                                 threshold_stage)
from onebit.runtime.geometry import output_size
from onebit.runtime.graph import INT16_MAX_K, Op, Value

SKIP = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class _Pending:
    """A producer whose output stage is not decided yet (its consumer is not seen yet)."""

    name: str
    type: str  # conv2d_u8 | conv2d_i8 | dwconv2d_i8 | bconv2d | bdense | dense_f32 | conv1x1_f32
    attrs: dict
    tensors: dict  # role -> np.ndarray (weights; stage tensors are added on finalize)
    a: np.ndarray  # z = a*y + b per output channel (float64)
    b: np.ndarray
    k: int  # bound of |y|
    in_value: str
    out_shape: tuple
    acts: list = field(default_factory=list)  # (name, module) after the BN
    pools: list = field(default_factory=list)  # (name, module)
    has_bn: bool = False
    post: tuple | None = None  # (scale, shift) of a BatchNorm after the max pool(s)
    post_acts: list = field(default_factory=list)  # (name, module) after that BatchNorm
    post_name: str = ""  # the name of that BatchNorm
    act_bn: tuple | None = None  # (name, scale, shift) of a BatchNorm after the activation (no pool)


def _pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]


def _t(x) -> np.ndarray:
    return x.detach().double().cpu().numpy()


class _Builder:
    def __init__(self, input_shape, float_boundary=False):
        self.float_boundary = float_boundary
        self.ops: list[Op] = []
        self.values: dict[str, Value] = {"input": Value("u8", tuple(input_shape))}
        self.tensors: dict[str, np.ndarray] = {}
        self.cur = "input"
        self.pending: _Pending | None = None
        self.pad: tuple | None = None  # (name, (top, left), (bottom, right), value) of a padding layer
        self.flips: dict[str, np.ndarray] = {}  # bits value -> channels stored negated (pool -> BN)
        self.reshape: tuple | None = None  # (name, (H, W, C)) of an NHWC reshape to [1, 1, H*W*C]

    # -- emitting ---------------------------------------------------------------------------
    def emit(self, name, type_, attrs, tensors, value: Value, inputs=None):
        flipped = [i for i in (inputs or [self.cur]) if i in self.flips]
        if flipped and type_ not in ("bconv2d", "bdense", "flatten"):
            raise ConversionError(f"layer {name!r} ({type_}) reads {flipped[0]!r}, a max pool followed by a BatchNorm "
                                  f"with negative scale (a minimum pool, stored negated): only a binary layer can read it")
        if name in self.values or any(o.name == name for o in self.ops):
            name = f"{name}#{len(self.ops)}"
        roles = {}
        for role, arr in tensors.items():
            tname = f"{name}.{role}"
            self.tensors[tname] = np.ascontiguousarray(arr)
            roles[role] = tname
        self.ops.append(Op(name, type_, inputs or [self.cur], name, attrs, roles))
        self.values[name] = value
        self.cur = name
        return name

    def value(self) -> Value:
        return self.values[self.cur]

    # -- producers --------------------------------------------------------------------------
    def bit_planes(self, name, m, mean, std):
        """CBNN input transform (``onebit.nn.BitPlanes``) -> ``bitplanes`` op on the uint8 image."""
        if self.cur != "input" or self.pending is not None:
            raise ConversionError(f"layer {name!r} (BitPlanes): bit planes are taken of the input image only")
        h, w, c = self.value().shape
        if m.channels != c:
            raise ConversionError(f"layer {name!r} (BitPlanes): {m.channels} channels, the input has {c}")
        # the planes are of the pixels u the file's normalization maps back to: it must be the model's
        if not (np.allclose(_t(m.mean), mean, rtol=0, atol=1e-6) and np.allclose(_t(m.std), std, rtol=0, atol=1e-6)):
            raise ConversionError(f"layer {name!r} (BitPlanes): its normalization mean={_t(m.mean).tolist()} "
                                  f"std={_t(m.std).tolist()} differs from the input's mean={list(mean)} "
                                  f"std={list(std)}")
        self.emit(name, "bitplanes", {"planes": [int(p) for p in m.planes]}, {},
                  Value("bits", (h, w, len(m.planes))))

    def planes_conv(self, name, m: nn.Conv2d):
        """The float conv over +-1 bit planes -> ``bconv2d_planes`` (odd M-bit
        weights, M from :func:`onebit.convert.fold.odd_weight_bits`)."""
        _check_conv(name, m)
        h, w, cin = self.value().shape
        if m.in_channels != cin:
            raise ConversionError(f"layer {name!r} (Conv2d): {m.in_channels} input channels, the bit "
                                  f"planes are {cin}")
        bits_ = odd_weight_bits(_t(m.weight))  # fewer planes only where the weights lie on their grid
        v, s = quantize_weights_odd(_t(m.weight), bits_)
        planes = odd_weight_planes(v.transpose(0, 2, 3, 1), bits_)  # (M, Cout, KH, KW, Cin)
        kh, kw = m.kernel_size
        k = ((1 << bits_) - 1) * kh * kw * cin
        attrs = dict(in_channels=cin, out_channels=m.out_channels, kernel=[kh, kw], stride=_pair(m.stride),
                     padding=_pad(name, m), weight_bits=bits_, weight_layout="window", accumulator_bound=k,
                     accumulator_bits=16 if k <= INT16_MAX_K else 32)
        oh = output_size(h, kh, attrs["stride"][0], attrs["padding"][0])
        ow = output_size(w, kw, attrs["stride"][1], attrs["padding"][1])
        bias = _t(m.bias) if m.bias is not None else np.zeros(m.out_channels)
        # conv(planes)[o] = s[o] * y[o] + bias[o], y the exact integer sum of odd weights x +-1
        self.pending = _Pending(name, "bconv2d_planes", attrs, {"weight": pack_window_weights(planes)}, s, bias, k,
                                self.cur, (oh, ow, m.out_channels))

    def first_conv(self, name, m: nn.Conv2d, mean, std):
        """The int8 input layer: a float conv, or a binary-weight conv reading the float image
        (its quantized weights, sign(w) [* scale], are the float weights); after a ``bitplanes``
        op, the conv over the planes (:meth:`planes_conv`)."""
        if self.cur != "input" and self.pending is None and self.ops and self.ops[-1].type == "bitplanes" \
                and self.ops[-1].output == self.cur:
            return self.planes_conv(name, m)
        if self.cur != "input" or self.pending is not None:
            raise ConversionError(f"layer {name!r} ({type(m).__name__}): a float-input convolution is supported "
                                  f"only as the first layer (it becomes the int8 input layer)")
        from onebit.nn.layers import is_binary_layer

        _check_conv(name, m, groups=not is_binary_layer(m))
        h, w, cin = self.value().shape
        weight = _t(m.quantized_weight()) if hasattr(m, "quantized_weight") else _t(m.weight)
        if self.float_boundary:
            # float32 on the normalized image: x = float32(u) * (1 / (255 std)) + (-mean / std)
            kh, kw = m.kernel_size
            attrs = dict(in_channels=cin, out_channels=m.out_channels, kernel=[kh, kw],
                         stride=_pair(m.stride), **self.float_padding(name, m), **_groups(m))
            oh, ow = _conv_out(attrs, h, w)
            mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
            tens = {"weight": weight.transpose(0, 2, 3, 1),
                    "in_scale": (1.0 / (255.0 * std)).astype(np.float32), "in_offset": (-mean / std).astype(np.float32)}
            b = _t(m.bias) if m.bias is not None else np.zeros(m.out_channels)
            self.pending = _Pending(name, "conv2d_f32", attrs, tens, np.ones(m.out_channels), b, 0, self.cur,
                                    (oh, ow, m.out_channels))
            return
        weight = _t(ungrouped(m).weight) if m.groups != 1 else weight
        q, s, bias, zp = first_layer(weight, None if m.bias is None else _t(m.bias), mean, std)
        kh, kw = m.kernel_size
        attrs = dict(in_channels=cin, out_channels=m.out_channels, kernel=[kh, kw],
                     stride=_pair(m.stride), **self.float_padding(name, m))
        oh, ow = _conv_out(attrs, h, w)
        # |acc| <= 127 * 255 * kh*kw*cin: the int32 accumulator of the int8 conv never overflows
        self.pending = _Pending(name, "conv2d_u8", attrs, {"weight": q, "zero_point": zp}, s, bias,
                                127 * 255 * kh * kw * cin, self.cur, (oh, ow, m.out_channels))

    def binary(self, name, m):
        from onebit.nn.layers import BinaryConv2d

        self.finalize("bits", name)
        x = self.value()
        if x.kind in ("int8", "f32"):  # sign of a real tensor: bit = (x < 0), sign(0) = +1
            self.emit(f"{name}.bitpack", "bitpack", {}, {}, Value("bits", x.shape))
            x = self.value()
        if x.kind != "bits":
            raise ConversionError(f"layer {name!r} ({type(m).__name__}): its input is {x.kind}; "
                                  f"binarizing an int8 tensor is not supported by format v1")
        _check_binary(name, m)
        wq = m.weight_quantizer(m.weight.detach().clamp(-1, 1) if m.clip_latent else m.weight.detach())
        a = _t(m.channel_scale()) if m.scale == "channel" else np.ones(wq.shape[0])
        b = _t(m.bias) if m.bias is not None else np.zeros(wq.shape[0])
        wq = wq.detach().cpu().numpy()
        # pruned (ternary) weights: the 0/1 mask goes through the same permutation as the signs
        keep = None if m.weight_mask is None else m.weight_mask.detach().cpu().numpy() != 0
        reshape, self.reshape = self.reshape, None
        if reshape is not None:  # NHWC reshape to [1, 1, H*W*C] + 1x1 conv = a map-sized conv
            if len(x.shape) != 3 or reshape[1] != (1, 1, int(np.prod(x.shape))):
                raise ConversionError(f"layer {reshape[0]!r} (Reshape to {list(reshape[1])}): only a reshape of a "
                                      f"feature map to [1, 1, H*W*C] read by a 1x1 binary convolution is supported")
            h, w, c = x.shape
            if (not isinstance(m, BinaryConv2d) or tuple(m.kernel_size) != (1, 1) or _pair(m.stride) != [1, 1]
                    or m.explicit_padding() is not None or _pad(name, m) != [0, 0] or m.in_channels != h * w * c):
                raise ConversionError(f"layer {reshape[0]!r} (Reshape) must feed a 1x1 stride-1 unpadded binary "
                                      f"convolution over {h * w * c} channels, not {name!r}")

            def nchw(v):  # columns in NHWC order (h*W + w)*C + c -> an OIHW kernel over the map
                return v.reshape(v.shape[0], h, w, c).transpose(0, 3, 1, 2)

            wq = nchw(wq)
            keep = None if keep is None else nchw(keep)
        flip = self.flips.get(self.cur)
        if flip is not None:
            # input channels stored negated (a min pool, see fold.pooled_threshold_stage): x*w = (-x)*(-w)
            if isinstance(m, BinaryConv2d) and m.pad_value == 1 and max(*_pad(name, m), *(m.padding_end or (0, 0))):
                raise ConversionError(f"layer {name!r}: one-padding cannot follow a max pool + BatchNorm with "
                                      f"negative scale (its +1 padding would read as -1 in the negated channels)")
            c = flip.shape[0]
            wq = wq.copy()
            if wq.ndim == 4:
                wq[:, flip] *= -1
            else:  # dense: features in NCHW flatten order, channel-major
                wq.reshape(wq.shape[0], c, -1)[:, flip] *= -1
        if isinstance(m, BinaryConv2d):
            if len(x.shape) != 3:
                raise ConversionError(f"layer {name!r} (BinaryConv2d): input is not a feature map")
            if _pair(m.dilation) != [1, 1]:
                wq, keep = dilate_kernel(wq, keep, _pair(m.dilation))
            h, w, cin = x.shape
            kh, kw = wq.shape[2:]
            attrs = dict(in_channels=cin, out_channels=m.out_channels, kernel=[kh, kw],
                         stride=_pair(m.stride), **self.binary_padding(name, m))
            oh, ow = _conv_out(attrs, h, w)

            def layout(v):  # OIHW -> OHWI, packed along Cin
                return v.transpose(0, 2, 3, 1)

            self._binary_pending(name, "bconv2d", attrs, wq, keep, layout, a, b, kh * kw * cin,
                                 (oh, ow, m.out_channels))
        else:
            out = m.out_features
            if len(x.shape) == 3 and x.shape[0] * x.shape[1] > 1 and x.shape[2] % 64 == 0:
                # whole words per pixel: the packed NHWC map flattens by a reshape, so a dense
                # layer over it (weight columns permuted from NCHW to NHWC order) is a bdense,
                # which streams the weights once (a map-sized bconv2d kernel does not)
                h, w, c = x.shape
                if m.in_features != h * w * c:
                    raise ConversionError(f"layer {name!r} (BinaryLinear): in_features {m.in_features} "
                                          f"!= flattened input {h}x{w}x{c}")
                self.flatten(f"{name}.flatten")

                def layout(v):
                    return v.reshape(out, c, h, w).transpose(0, 2, 3, 1).reshape(out, -1)

                attrs = dict(in_features=h * w * c, out_features=out)
                self._binary_pending(name, "bdense", attrs, wq, keep, layout, a, b, h * w * c, (out,))
            elif len(x.shape) == 3 and x.shape[0] * x.shape[1] > 1:
                # flatten + dense == a convolution whose kernel covers the whole map: the weight
                # columns (NCHW flatten order c*H*W + h*W + w) become an OHWI kernel, no repacking
                h, w, c = x.shape
                if m.in_features != h * w * c:
                    raise ConversionError(f"layer {name!r} (BinaryLinear): in_features {m.in_features} "
                                          f"!= flattened input {h}x{w}x{c}")

                def layout(v):
                    return v.reshape(out, c, h, w).transpose(0, 2, 3, 1)

                attrs = dict(in_channels=c, out_channels=out, kernel=[h, w], stride=[1, 1], padding=[0, 0])
                self._binary_pending(name, "bconv2d", attrs, wq, keep, layout, a, b, h * w * c, (1, 1, out))
            else:
                if len(x.shape) == 3:
                    self.flatten(f"{name}.flatten")
                cin = self.value().shape[0]
                if m.in_features != cin:
                    raise ConversionError(f"layer {name!r} (BinaryLinear): in_features {m.in_features} "
                                          f"!= input features {cin}")
                attrs = dict(in_features=cin, out_features=out)
                self._binary_pending(name, "bdense", attrs, wq, keep, lambda v: v, a, b, cin, (out,))

    def nhwc_reshape(self, name, m):
        """A reshape in NHWC order of an [H, W, C] map to [1, 1, H*W*C] (Keras ``Reshape``),
        read by a 1x1 binary conv: together a binary dense over the NHWC-flattened map, written
        as a map-sized ``bconv2d`` whose OHWI weights are the 1x1 conv's columns as they are."""
        self.reshape = (name, tuple(m.target_shape))  # checked against the map by the binary conv

    def explicit_pad(self, name, m: nn.ConstantPad2d):
        """A padding layer (``nn.ZeroPad2d`` / ``nn.ConstantPad2d``): it becomes the padding of
        the convolution that reads its output (the next layer, else an error)."""
        left, right, top, bottom = (int(v) for v in m.padding)
        if min(left, right, top, bottom) < 0:
            raise ConversionError(f"layer {name!r} ({type(m).__name__}): negative padding (cropping) is not supported")
        self.pad = (name, (top, left), (bottom, right), float(m.value))

    def take_pad(self, name, m):
        """The padding layer right before conv ``name`` (or None); no padding layer may wait
        for any other kind of layer."""
        pad, self.pad = self.pad, None
        if pad is not None and (_pad(name, m) != [0, 0] or getattr(m, "padding_end", None) not in (None, (0, 0))):
            raise ConversionError(f"layer {pad[0]!r} ({name!r} reads it): a padding layer before a convolution "
                                  f"that pads as well is not supported (give the convolution padding=0)")
        return pad

    def float_padding(self, name, m) -> dict:
        """Padding attributes of an int8 conv: its own padding, or the padding layer before
        it, whose value must be a real 0 (the int8 conv pads with the zero point)."""
        pad = self.take_pad(name, m)
        explicit = m.explicit_padding() if hasattr(m, "explicit_padding") else None
        if pad is None and explicit is not None:
            pad = (name, explicit[0], explicit[1], float(m.pad_value))
        if pad is None:
            return {"padding": _pad(name, m)}
        if pad[3] != 0.0:
            raise ConversionError(f"layer {pad[0]!r}: padding with {pad[3]:g} before the float convolution "
                                  f"{name!r}: the int8 convolution pads with a real 0 only")
        return _pad_attrs(pad[1], pad[2])

    def binary_padding(self, name, m) -> dict:
        """Padding attributes of a ``bconv2d`` (docs/format.md §3): the layer's own (symmetric
        true zero, or its ``pad_value`` / ``padding_end``), or a padding layer before it, whose
        value the layer binarizes: ``sign(v) = +1`` for ``v >= 0``, so it is one-padding."""
        pad = self.take_pad(name, m)
        explicit = m.explicit_padding()
        if pad is not None:
            if pad[3] < 0:
                raise ConversionError(f"layer {pad[0]!r}: padding with {pad[3]:g} before the binary convolution "
                                      f"{name!r} binarizes to -1: the engine pads with 0 or +1 only")
            attrs = _pad_attrs(pad[1], pad[2], pad_value=1)
        elif explicit is not None:
            attrs = _pad_attrs(explicit[0], explicit[1], pad_value=m.pad_value)
        else:
            attrs = {"padding": _pad(name, m)}
        end = attrs.get("padding_end", attrs["padding"])
        if attrs["padding"][0] != attrs["padding"][1] or end[0] != end[1]:
            raise ConversionError(f"layer {name!r}: padding {attrs['padding']} before and {end} after the input: "
                                  f"the engine's binary convolution pads both axes alike")
        return attrs

    def _binary_pending(self, name, type_, attrs, wq, keep, layout, a, b, k, out_shape):
        """Pack the +-1 weights ``wq`` (and the kept-weight mask ``keep``, or None) in the engine
        layout ``layout(v)`` (docs/format.md §2, §7.3). A pruned weight is stored as bit 0 under a
        mask bit 0 (canonical form). The mask is stored only when some weight is pruned, in the
        compact form ``weight_word_mask`` (one bit per packed word) when every packed word is all
        kept or all pruned, else as the full ``weight_mask``; the weights of a pruned layer are
        stored as ``weight_kept``, the bits of the kept weights only (``kept_weights`` of them).
        The accumulator bound is then the largest count of kept weights of one output channel."""
        packed = _bits.pack(layout(wq))
        tensors = {"weight": packed}
        if keep is not None and not keep.all():
            keep = layout(keep)
            mask = _bits.pack_mask(keep)
            compact = _bits.pack_word_mask(mask, keep.shape[-1])
            if compact is not None:
                tensors["weight_word_mask"] = compact
            else:
                tensors["weight_mask"] = mask
            del tensors["weight"]
            tensors["weight_kept"], attrs["kept_weights"] = _bits.pack_kept(packed & mask, mask)
            k = int(_bits.kept_counts(mask).max(initial=0))
        # accumulator bound: a binary dot over K bits lies in [-K, K] (docs/format.md §4)
        attrs["accumulator_bound"] = int(k)
        attrs["accumulator_bits"] = 16 if k <= INT16_MAX_K else 32
        self.pending = _Pending(name, type_, attrs, tensors, a, b, int(k), self.cur, out_shape)

    def float_linear(self, name, m: nn.Linear):
        self.finalize("f32", name)
        x = self.value()
        if x.kind == "int8":  # a clip block feeds the float head: real value = q * scale
            self.emit(f"{name}.dequantize", "dequantize", {}, {}, Value("f32", x.shape))
            x = self.value()
        if x.kind != "f32":
            raise ConversionError(f"layer {name!r} (Linear): float input expected, got {x.kind}")
        w = _t(m.weight)
        if len(x.shape) == 3:
            h, ww, c = x.shape
            if m.in_features != h * ww * c:
                raise ConversionError(f"layer {name!r} (Linear): in_features {m.in_features} != "
                                      f"flattened input {h}x{ww}x{c}")
            # PyTorch flattens NCHW (c*H*W + h*W + w); the engine flattens NHWC: permute columns
            w = w.reshape(w.shape[0], c, h, ww).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            self.flatten(f"{name}.flatten")
        if m.in_features != self.value().shape[0]:
            raise ConversionError(f"layer {name!r} (Linear): in_features {m.in_features} != "
                                  f"input features {self.value().shape[0]}")
        b = _t(m.bias) if m.bias is not None else np.zeros(w.shape[0])
        self.pending = _Pending(name, "dense_f32", dict(in_features=w.shape[1], out_features=w.shape[0]),
                                {"weight": w}, np.ones(w.shape[0]), b, 0, self.cur, (w.shape[0],))

    # -- what follows a producer --------------------------------------------------------------
    def batchnorm(self, name, m):
        p = self.pending
        if p is not None and p.pools and p.post is None and not p.post_acts:
            # the classic order producer -> [BN] [act] -> max pool -> BN, folded after the pool
            if m.num_features != p.out_shape[-1]:
                raise ConversionError(f"layer {name!r}: {m.num_features} features, the producer has {p.out_shape[-1]}")
            p.post, p.post_name = bn_affine(m), name
            return
        if p is not None and p.acts and not p.pools and p.act_bn is None:
            # producer [BN] act BN (QuickNet's residual blocks): a per-channel clamp in the float
            # stage (:meth:`_act_bn_clamp`)
            if m.num_features != p.out_shape[-1]:
                raise ConversionError(f"layer {name!r}: {m.num_features} features, the producer has {p.out_shape[-1]}")
            p.act_bn = (name, *bn_affine(m))
            return
        if p is None or p.has_bn or p.acts or p.pools:
            raise ConversionError(f"layer {name!r} ({type(m).__name__}): BatchNorm must directly "
                                  f"follow a convolution or linear layer")
        if m.num_features != p.out_shape[-1]:
            raise ConversionError(f"layer {name!r}: {m.num_features} features, the producer has {p.out_shape[-1]}")
        s, t = bn_affine(m)
        p.a, p.b, p.has_bn = s * p.a, s * p.b + t, True

    def activation(self, name, m):
        if self.pending is None:
            raise ConversionError(f"layer {name!r} ({type(m).__name__}): activation without a "
                                  f"preceding convolution/linear layer")
        p = self.pending
        if p.act_bn is not None:
            raise ConversionError(f"layer {name!r} ({type(m).__name__}): an activation after the BatchNorm "
                                  f"{p.act_bn[0]!r} that follows an activation is not supported")
        (p.post_acts if p.post is not None else p.acts).append((name, m))

    def pool(self, name, m):
        if self.pending is None:
            raise ConversionError(f"layer {name!r} ({type(m).__name__}): pooling is supported "
                                  f"only after a convolution + BatchNorm")
        if getattr(m, "dilation", 1) not in (1, (1, 1)) or getattr(m, "return_indices", False):
            raise ConversionError(f"layer {name!r} (MaxPool2d): dilation and return_indices are "
                                  f"not supported")
        if self.pending.post is not None:
            raise ConversionError(f"layer {name!r} (MaxPool2d): a second pool after the BatchNorm that follows "
                                  f"a pool is not supported")
        if self.pending.act_bn is not None:
            raise ConversionError(f"layer {name!r} (MaxPool2d): a pool after the BatchNorm {self.pending.act_bn[0]!r} "
                                  f"that follows an activation is not supported")
        self.pending.pools.append((name, m))

    def flatten(self, name):
        x = self.value()
        if len(x.shape) == 1:
            return
        self.emit(name, "flatten", {}, {}, Value(x.kind, (int(np.prod(x.shape)),), x.scale))

    def clip(self, name, m):
        p = self.pending
        if p is None:
            raise ConversionError(f"layer {name!r} (ClipBlock): a clip block must follow a "
                                  f"convolution/linear layer (+ BatchNorm)")
        if m.qmax != 127:
            raise ConversionError(f"layer {name!r} (ClipBlock): {m.bits}-bit grids are not supported "
                                  f"(the engine's int8 grid is [-127, 127])")
        self.finalize("int8", name, clip=m)

    def finalize(self, consumer: str, consumer_name: str, clip=None):
        """Emit the pending producer with the output stage its consumer needs."""
        p = self.pending
        if p is None:
            return
        self.pending = None
        where = f"layer {p.name!r} ({p.type}) feeding {consumer_name!r}"
        if p.act_bn is not None and consumer != "f32":
            raise ConversionError(f"{where}: activation then BatchNorm {p.act_bn[0]!r} feeding a {consumer} "
                                  f"layer: supported before a float layer or an addition only")
        if p.type in ("conv2d_f32", "dwconv2d_f32"):  # float convs: BN folded, then clamp, pools, sign
            if consumer == "int8":
                raise ConversionError(f"{where}: a float convolution feeding a ClipBlock is not supported")
            clamp = self._float_clamp(p)
            w = p.tensors["weight"]  # BN scales output channels: axis 0 (OHWI) or the last (KH, KW, C)
            w = p.a[:, None, None, None] * w if p.type == "conv2d_f32" else w * p.a
            tens = dict(p.tensors, weight=w.astype(np.float32), bias=p.b.astype(np.float32))
            self.emit(p.name, p.type, p.attrs, tens, Value("f32", p.out_shape))
            self._float_tail(p, clamp, p.post)
            return
        if p.type in ("dense_f32", "conv1x1_f32"):
            if consumer != "f32" or p.acts or p.pools:
                raise ConversionError(f"{where}: a float layer must feed a float consumer directly "
                                      f"(no activation, pooling, sign or clip block)")
            # BN folds into the float weights: W' = a[:, None] * W, b' = a*b + c
            w = (p.a[:, None] * p.tensors["weight"]).astype(np.float32)
            self.emit(p.name, p.type, p.attrs, {"weight": w, "bias": p.b.astype(np.float32)},
                      Value("f32", p.out_shape))
            return
        attrs = dict(p.attrs)
        tens = dict(p.tensors)
        flip = None
        post = None  # the BatchNorm after the pool, as its own op (affine_f32) after the float stage
        if p.post is not None and consumer == "bits":
            t, d, flip = self.pooled_bits(p)
            attrs["output"] = "bits"
            tens.update(threshold=t, direction=d)
            value = Value("bits", p.out_shape)
            consumer = "pooled-bits"
        elif p.post is not None:
            s2, t2 = p.post
            neg = np.flatnonzero(s2 < 0)
            if (neg.size or p.acts) and consumer != "f32":
                why = (f"channels {neg[:8].tolist()} have a negative BatchNorm scale (the pool would be a minimum)"
                       if neg.size else f"activation {p.acts[0][0]!r} lies between the producer and the pool")
                raise ConversionError(f"{where}: max pool then BatchNorm feeding a {consumer} layer: {why}; "
                                      f"supported before a sign (binary layer) or a float layer")
            if neg.size or p.acts:
                post = p.post  # the pool runs on the float stage, then the BN (affine_f32)
            else:  # s2 >= 0: max commutes with z -> s2*z + t2, so the BN folds into the producer
                p.a, p.b, p.acts = s2 * p.a, s2 * p.b + t2, p.post_acts
        if consumer == "pooled-bits":
            pass
        elif consumer == "bits":
            const_plus = np.zeros(p.a.shape, bool)
            for an, am in p.acts:
                if isinstance(am, nn.Hardtanh) and am.min_val < 0 <= am.max_val:
                    continue  # sign(hardtanh(z)) == sign(z)
                if isinstance(am, nn.ReLU):
                    const_plus[:] = True  # sign(relu(z)) == +1
                elif isinstance(am, nn.PReLU):
                    slope = _t(am.weight)
                    const_plus |= np.broadcast_to(slope <= 0, const_plus.shape)  # a<=0: prelu(z) >= 0
                else:
                    raise ConversionError(f"layer {an!r} ({type(am).__name__}) before a sign is not supported")
            t, d = threshold_stage(p.a, p.b, p.k, const_plus if const_plus.any() else None)
            attrs["output"] = "bits"
            tens.update(threshold=t, direction=d)
            value = Value("bits", p.out_shape)
        elif consumer == "int8":
            c = clip.clip_value
            for an, am in p.acts:
                if not (isinstance(am, nn.Hardtanh) and am.min_val <= -c and am.max_val >= c):
                    raise ConversionError(f"layer {an!r} ({type(am).__name__}) before a ClipBlock is "
                                          f"not supported (only a hardtanh wider than the clip)")
            scale = c / 127.0
            m_, b_, s_ = int8_stage(p.a, p.b, scale, p.k)
            attrs.update(output="int8", shift=s_, out_scale=scale)
            tens.update(multiplier=m_, bias=b_)
            value = Value("int8", p.out_shape, scale)
        else:
            clamp = self._float_clamp(p)
            attrs["output"] = "f32"
            tens.update(scale=p.a.astype(np.float32), bias=p.b.astype(np.float32))
            value = Value("f32", p.out_shape)
        self.emit(p.name, p.type, attrs, tens, value)
        if value.kind == "f32":
            self._float_tail(p, clamp, post)
            return
        for pn, pm in p.pools:
            self.pool_op(pn, pm, "maxpool2d")
        if flip is not None and flip.any():
            self.flips[self.cur] = flip

    def pooled_bits(self, p):
        """Thresholds of producer -> [BN] [hardtanh / ReLU] -> max pool -> BN [hardtanh / ReLU] ->
        sign, with the channels whose pool becomes a minimum stored negated
        (:func:`onebit.convert.fold.pooled_threshold_stage`)."""
        lo, hi = -np.inf, np.inf
        if len(p.acts) > 1:
            raise ConversionError(f"layer {p.acts[1][0]!r}: one activation at most between the producer and the pool")
        for an, am in p.acts:
            if isinstance(am, nn.Hardtanh):
                lo, hi = float(am.min_val), float(am.max_val)
            elif isinstance(am, nn.ReLU):
                lo = 0.0
            else:
                raise ConversionError(f"layer {an!r} ({type(am).__name__}) before a max pool and BatchNorm is not "
                                      f"supported (hardtanh or ReLU)")
        plus = None
        for an, am in p.post_acts:
            if isinstance(am, nn.Hardtanh) and am.min_val < 0 <= am.max_val:
                continue  # sign(hardtanh(z)) == sign(z)
            if isinstance(am, nn.ReLU):
                plus = np.ones(p.a.shape, bool)  # sign(relu(z)) == +1
                continue
            raise ConversionError(f"layer {an!r} ({type(am).__name__}) before a sign is not supported")
        s2, t2 = p.post
        return pooled_threshold_stage(p.a, p.b, p.k, s2, t2, lo, hi, plus)

    def _float_tail(self, p, clamp, post):
        """What follows a float output stage: its activation (``clamp``, from :meth:`_float_clamp`),
        its max pools, and ``post`` = (scale, shift) of a BatchNorm after the pools that did not fold
        into the stage (``affine_f32``) with the activation after that BatchNorm."""
        if isinstance(clamp, nn.PReLU):
            self.prelu(p.acts[0][0], clamp)
        elif clamp is not None:  # named after its activation, or the BatchNorm folded into its bounds
            self._emit_clamp(p.acts[0][0] if np.ndim(clamp[0]) == 0 else p.act_bn[0], clamp)
        for pn, pm in p.pools:
            self.pool_op(pn, pm, "maxpool2d")
        if post is None:
            return
        self.affine(p.post_name, *post)
        clamp = self._act_clamp(p.post_acts)
        if clamp is not None:
            self._emit_clamp(p.post_acts[0][0], clamp)

    def affine(self, name, scale, shift):
        """A per-channel affine map ``scale[c] * x + shift[c]`` on the current float32 value (a
        BatchNorm that folds into no producer's output stage): ``affine_f32``."""
        x = self.value()
        if x.kind != "f32":
            raise ConversionError(f"layer {name!r} (BatchNorm): a per-channel affine map on {x.kind} values; "
                                  f"float32 values are supported")
        if len(scale) != x.shape[-1]:
            raise ConversionError(f"layer {name!r}: {len(scale)} features, its input has {x.shape[-1]} channels")
        self.emit(name, "affine_f32", {}, {"scale": np.asarray(scale, np.float32), "bias": np.asarray(shift, np.float32)},
                  Value("f32", x.shape))

    @staticmethod
    def _act_clamp(acts):
        """(min, max) of the one Hardtanh / ReLU in ``acts`` (before a float layer), or None."""
        clamp = None
        for an, am in acts:
            if isinstance(am, nn.Hardtanh):
                clamp = (float(am.min_val), float(am.max_val))
            elif isinstance(am, nn.ReLU):
                clamp = (0.0, F32_MAX)
            else:
                raise ConversionError(f"layer {an!r} ({type(am).__name__}) before a float layer "
                                      f"is not supported")
            if len(acts) > 1:
                raise ConversionError(f"layer {an!r}: one activation at most before a float layer")
        return clamp

    def _float_clamp(self, p):
        """The clamp after a producer with a float output: (min, max) of its one Hardtanh / ReLU,
        or None; with a BatchNorm after it (``p.act_bn``): per-channel bounds (arrays), the
        BatchNorm folded into ``p.a``, ``p.b`` (:func:`_act_bn_clamp`). A PReLU (its own op,
        :meth:`prelu`) is returned as its module."""
        if p.act_bn is None and len(p.acts) == 1 and isinstance(p.acts[0][1], nn.PReLU):
            return p.acts[0][1]
        clamp = self._act_clamp(p.acts)
        return clamp if p.act_bn is None else _act_bn_clamp(p, clamp)

    def _emit_clamp(self, name, clamp):
        """A ``clamp_f32`` op ``name`` on the current float value: scalar bounds as attributes,
        per-channel bounds (an activation then a BatchNorm) as the tensors ``lower`` / ``upper``."""
        lo, hi = clamp
        if np.ndim(lo) == 0:
            self.emit(name, "clamp_f32", {"min": lo, "max": hi}, {}, self.value())
        else:
            self.emit(name, "clamp_f32", {}, {"lower": lo, "upper": hi}, self.value())

    def prelu(self, name, m: nn.PReLU):
        """A PReLU on the current float32 value: ``prelu_f32``, one slope per channel (a single
        slope repeated over the channels)."""
        x = self.value()
        if x.kind != "f32":
            raise ConversionError(f"layer {name!r} (PReLU) on a {x.kind} value: a PReLU on its own is supported "
                                  f"on float values")
        c, slope = x.shape[-1], _t(m.weight).reshape(-1)
        if slope.size == 1:
            slope = np.repeat(slope, c)
        if slope.size != c:
            raise ConversionError(f"layer {name!r} (PReLU): {slope.size} slopes, its input has {c} channels")
        self.emit(name, "prelu_f32", {}, {"slope": slope.astype(np.float32)}, Value("f32", x.shape))

    def pool_op(self, name, pm, type_):
        """Emit a max/avg pooling op on the current value.

        ``ceil_mode`` is recorded (attribute ``ceil_mode``, docs/format.md §7.3) only where it
        changes the output size: otherwise both modes have the same windows and divisors."""
        x = self.value()
        if len(x.shape) != 3:
            raise ConversionError(f"layer {name!r} ({type(pm).__name__}): input is not a feature map")
        k, s, pd = _pair(pm.kernel_size), _pair(pm.stride or pm.kernel_size), _pair(pm.padding)
        if pd[0] * 2 > k[0] or pd[1] * 2 > k[1]:
            raise ConversionError(f"layer {name!r} ({type(pm).__name__}): padding {pd} must be at most "
                                  f"half the kernel {k}")
        h, w, c = x.shape
        ceil = bool(getattr(pm, "ceil_mode", False))
        out = (output_size(h, k[0], s[0], pd[0], ceil), output_size(w, k[1], s[1], pd[1], ceil), c)
        attrs = {"kernel": k, "stride": s, "padding": pd}
        if ceil and out[:2] != (output_size(h, k[0], s[0], pd[0]), output_size(w, k[1], s[1], pd[1])):
            attrs["ceil_mode"] = True
        if type_ == "avgpool2d":
            if getattr(pm, "divisor_override", None) is not None:
                raise ConversionError(f"layer {name!r} (AvgPool2d): divisor_override is not supported")
            attrs["count_include_pad"] = bool(pm.count_include_pad)
            if x.kind not in ("int8", "f32"):
                raise ConversionError(f"layer {name!r} (AvgPool2d): average pooling of {x.kind} is not supported")
        self.emit(name, type_, attrs, {}, Value(x.kind, out, x.scale))

    # -- residual blocks (onebit.models.blocks, dataflow documented there) -----------------------
    def float_conv(self, name, m: nn.Conv2d, pool_fold=None):
        """A float conv reading an int8 tensor (``conv2d_i8``) or a float tensor (``conv1x1_f32`` for
        a 1x1 stride-1 conv, else ``conv2d_f32``).

        ``pool_fold`` = [k, k]: an average pool (kernel k, stride k, no padding) before a 1x1 conv,
        folded into a k x k stride-k conv whose taps all hold w / k^2.
        """
        _check_conv(name, m, groups=True)
        x = self.value()
        h, w, cin = x.shape
        kh, kw = m.kernel_size
        attrs = dict(in_channels=cin, out_channels=m.out_channels)
        b = _t(m.bias) if m.bias is not None else np.zeros(m.out_channels)
        weight = _t(m.weight)
        stride, pads = _pair(m.stride), self.float_padding(name, m)
        padding = pads["padding"]
        if pool_fold is not None:
            if (kh, kw) != (1, 1) or stride != [1, 1] or pads != {"padding": [0, 0]}:
                raise ConversionError(f"layer {name!r}: only a 1x1 conv folds with the pooling before it")
            kh, kw = pool_fold
            weight = np.repeat(np.repeat(weight, kh, axis=2), kw, axis=3) / (kh * kw)
            stride = [kh, kw]
        if x.kind == "int8":
            # conv(q * s_x) = s_x * s_w[o] * sum q_w * q  (int8 weights per output channel; a grouped
            # conv as its block-diagonal kernel)
            q, sw = quantize_weights_int8(_t(ungrouped(m).weight) if m.groups != 1 else weight)
            attrs.update(kernel=[kh, kw], stride=stride, **pads)
            oh, ow = _conv_out(attrs, h, w)
            self.pending = _Pending(name, "conv2d_i8", attrs, {"weight": np.ascontiguousarray(q.transpose(0, 2, 3, 1))},
                                    x.scale * sw, b, 127 * 127 * kh * kw * cin, self.cur, (oh, ow, m.out_channels))
        elif x.kind == "f32" and (kh, kw) == (1, 1) and _pair(m.stride) == [1, 1] and pads == {"padding": [0, 0]} \
                and m.groups == 1:
            self.pending = _Pending(name, "conv1x1_f32", attrs, {"weight": _t(m.weight)[:, :, 0, 0]},
                                    np.ones(m.out_channels), b, 0, self.cur, (h, w, m.out_channels))
        elif x.kind == "f32":
            attrs.update(kernel=[kh, kw], stride=stride, **pads, **_groups(m))
            oh, ow = _conv_out(attrs, h, w)
            self.pending = _Pending(name, "conv2d_f32", attrs, {"weight": weight.transpose(0, 2, 3, 1)},
                                    np.ones(m.out_channels), b, 0, self.cur, (oh, ow, m.out_channels))
        else:
            raise ConversionError(f"layer {name!r} (Conv2d): a float conv on {x.kind} input is supported "
                                  f"on int8 or float32 input")

    def depthwise(self, name, m: nn.Conv2d):
        """A depthwise ``nn.Conv2d`` (``groups = in_channels = out_channels``) reading an int8
        tensor: ``dwconv2d_i8`` with int8 weights per channel, ``conv(q * s_x) = s_x * s_w[c] *
        sum q_w * q``; BN and the output stage fold as for the int8 convolution."""
        c = m.in_channels
        if m.groups != c or m.out_channels != c or _pair(m.dilation) != [1, 1] or m.padding_mode != "zeros":
            raise ConversionError(f"layer {name!r} (Conv2d): grouped convolutions are supported only as "
                                  f"depthwise convolutions (groups = in_channels = out_channels, depth "
                                  f"multiplier 1) without dilation, with zero padding; got groups={m.groups}, "
                                  f"{m.in_channels} -> {m.out_channels} channels")
        self.finalize("f32", name)
        x = self.value()
        if x.kind not in ("int8", "f32") or len(x.shape) != 3:
            raise ConversionError(f"layer {name!r} (depthwise Conv2d): its input is {x.kind} "
                                  f"{list(x.shape)}; the engine's depthwise convolution reads an int8 "
                                  f"or float32 feature map")
        h, w, cin = x.shape
        if cin != c:
            raise ConversionError(f"layer {name!r}: {c} channels, its input has {cin}")
        kh, kw = m.kernel_size
        attrs = dict(in_channels=c, out_channels=c, kernel=[kh, kw], stride=_pair(m.stride),
                     **self.float_padding(name, m))
        oh, ow = _conv_out(attrs, h, w)
        b = _t(m.bias) if m.bias is not None else np.zeros(c)
        if x.kind == "f32":  # float data (float shortcuts, float boundary): float weights
            self.pending = _Pending(name, "dwconv2d_f32", attrs, {"weight": _t(m.weight)[:, 0].transpose(1, 2, 0)},
                                    np.ones(c), b, 0, self.cur, (oh, ow, c))
            return
        q, sw = quantize_weights_int8(_t(m.weight))  # (C, 1, KH, KW) -> (KH, KW, C)
        self.pending = _Pending(name, "dwconv2d_i8", attrs,
                                {"weight": np.ascontiguousarray(q[:, 0].transpose(1, 2, 0))},
                                x.scale * sw, b, 127 * 127 * kh * kw, self.cur, (oh, ow, c))

    def stage_to(self, name, clip):
        """Finalize the pending producer: int8 through ``clip`` (a ClipBlock) or float (Identity)."""
        from onebit.nn.clip import ClipBlock

        if isinstance(clip, ClipBlock):
            self.clip(name, clip)
        elif isinstance(clip, nn.Identity):
            self.finalize("f32", name)
        else:
            raise ConversionError(f"layer {name!r} of type {type(clip).__name__} is not supported here")

    def residual_block(self, name, blk):
        """out = clip2(clip1(bn(bconv(x))) + shortcut(x)), shortcut = x or clip(bn(conv1x1(avgpool(x))))."""
        self.finalize("f32", name)
        x_name = self.cur
        if not isinstance(blk.act, nn.Identity):
            raise ConversionError(f"layer {name}.act ({type(blk.act).__name__}): a binary block has no "
                                  f"activation before its sign")
        self.binary(f"{name}.conv", blk.conv)
        self.batchnorm(f"{name}.bn", blk.bn)
        self.stage_to(f"{name}.clip1", blk.clip1)
        y_name = self.cur
        self.cur = x_name
        sc = blk.shortcut
        if not isinstance(sc, nn.Identity):
            pool = sc.pool
            if not isinstance(pool, nn.Identity) and self.value().kind == "int8" and _foldable(pool, self.value()):
                # avgpool(k, stride k) + 1x1 conv == one k x k stride-k conv with weights w/k^2:
                # exact, and it avoids rounding the pooled tensor back onto the int8 grid
                self.float_conv(f"{name}.shortcut.conv", sc.conv, pool_fold=_pair(pool.kernel_size))
            else:
                if not isinstance(pool, nn.Identity):
                    self.pool_op(f"{name}.shortcut.pool", pool, "avgpool2d")
                self.float_conv(f"{name}.shortcut.conv", sc.conv)
            self.batchnorm(f"{name}.shortcut.bn", sc.bn)
            self.stage_to(f"{name}.shortcut.clip", sc.clip)
        self.add(f"{name}.add", y_name, self.cur, blk.clip2)

    def transition_block(self, name, blk):
        """out = clip(bn(conv1x1(maxpool2(x))))."""
        self.finalize("f32", name)
        self.pool_op(f"{name}.pool", blk.pool, "maxpool2d")
        self.float_conv(f"{name}.conv", blk.conv)
        self.batchnorm(f"{name}.bn", blk.bn)
        self.stage_to(f"{name}.clip", blk.clip)

    def add(self, name, a_name, b_name, clip):
        from onebit.nn.clip import ClipBlock

        a, b = self.values[a_name], self.values[b_name]
        if a.kind == "int8" and b.kind == "int8" and isinstance(clip, ClipBlock):
            # clip(q_a*s_a + q_b*s_b) = clamp(round(q_a*s_a/s + q_b*s_b/s)) with s = clip/127:
            # fixed point (q_a*Ma + q_b*Mb + 2^(S-1)) >> S, Ma = round(s_a/s * 2^S), Mb likewise,
            # S the largest shift (<= 30) with 127*(|Ma| + |Mb|) + 2^(S-1) < 2^31 (int32 exact)
            s = clip.clip_value / 127.0
            ra, rb = a.scale / s, b.scale / s
            shift = 30
            while shift > 1 and 127 * (round(ra * 2**shift) + round(rb * 2**shift)) + 2 ** (shift - 1) >= 2**31:
                shift -= 1
            ma, mb = round(ra * 2**shift), round(rb * 2**shift)
            if ma < 1 or mb < 1:
                raise ConversionError(f"layer {name!r}: int8 add scales {a.scale:.3g}, {b.scale:.3g} -> "
                                      f"{s:.3g} cannot be represented in fixed point")
            self.emit(name, "add", {"ma": ma, "mb": mb, "shift": shift, "out_scale": s}, {},
                      Value("int8", a.shape, s), inputs=[a_name, b_name])
        elif a.kind == "f32" and b.kind == "f32" and isinstance(clip, nn.Identity):
            self.emit(name, "add", {}, {}, Value("f32", a.shape), inputs=[a_name, b_name])
        else:
            raise ConversionError(f"layer {name!r}: residual add of {a.kind} and {b.kind} followed by "
                                  f"{type(clip).__name__} is not supported (clip blocks must be used "
                                  f"everywhere or nowhere)")

    def global_pool(self, name, m):
        if _pair(m.output_size if not isinstance(m.output_size, int) else m.output_size) != [1, 1]:
            raise ConversionError(f"layer {name!r} (AdaptiveAvgPool2d): only output size 1 is supported")
        self.finalize("f32", name)
        x = self.value()
        if x.kind not in ("int8", "f32") or len(x.shape) != 3:
            raise ConversionError(f"layer {name!r}: global average pooling of {x.kind} is not supported")
        self.emit(name, "global_avgpool", {}, {}, Value("f32", (x.shape[2],)))


def _foldable(pool, x) -> bool:
    """AvgPool2d(k, stride k, padding 0) whose ceil_mode (if set) changes nothing on this input."""
    if not isinstance(pool, nn.AvgPool2d) or pool.divisor_override is not None:
        return False
    k, s, p = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size), _pair(pool.padding)
    return k == s and p == [0, 0] and x.shape[0] % k[0] == 0 and x.shape[1] % k[1] == 0


def _is_nhwc_reshape(m) -> bool:
    """An imported Keras ``Reshape`` (onebit.convert.larq.modules.Reshape: NHWC order)."""
    try:
        from onebit.convert.larq.modules import Reshape
    except ImportError:  # pragma: no cover - part of onebit
        return False
    return isinstance(m, Reshape)


def _act_bn_clamp(p: _Pending, clamp) -> tuple:
    """Fold the BatchNorm ``(s, t)`` that follows the activation ``clamp(z, lo, hi)`` of a float
    stage: ``s * clamp(z, lo, hi) + t == clamp(s*z + t, s*lo + t, s*hi + t)`` for ``s >= 0`` and
    ``clamp(s*z + t, s*hi + t, s*lo + t)`` for ``s < 0`` (``t`` alone for ``s == 0``). The stage
    becomes ``s*z + t`` (``p.a``, ``p.b`` scaled); returns the per-channel float32 bounds (an
    unbounded side is +-F32_MAX)."""
    _, s, t = p.act_bn
    lo, hi = clamp
    with np.errstate(over="ignore", invalid="ignore"):
        a, b = s * lo + t, s * hi + t
    lower = np.where(s > 0, a, np.where(s < 0, b, t))
    upper = np.where(s > 0, b, np.where(s < 0, a, t))
    p.a, p.b = s * p.a, s * p.b + t
    return (np.clip(lower, -F32_MAX, F32_MAX).astype(np.float32), np.clip(upper, -F32_MAX, F32_MAX).astype(np.float32))


def _pad_attrs(begin, end, pad_value=0) -> dict:
    """``padding`` (top, left), ``padding_end`` (bottom, right) only where it differs, and
    ``pad_value`` only when it is 1 and some tap is padded (docs/format.md §7.3)."""
    attrs = {"padding": [int(begin[0]), int(begin[1])]}
    if list(end) != attrs["padding"]:
        attrs["padding_end"] = [int(end[0]), int(end[1])]
    if pad_value == 1 and max(*begin, *end) > 0:
        attrs["pad_value"] = 1
    return attrs


def _conv_out(attrs, h, w) -> tuple:
    """(OH, OW) of a conv op's attributes (``padding`` before, ``padding_end`` after the input)."""
    k, s, p = attrs["kernel"], attrs["stride"], attrs["padding"]
    e = attrs.get("padding_end", p)
    return (output_size(h, k[0], s[0], p[0], padding_end=e[0]), output_size(w, k[1], s[1], p[1], padding_end=e[1]))


def dilate_kernel(wq: np.ndarray, keep, dilation):
    """A dilated convolution as the undilated one of its spread kernel: the OIHW weights ``wq``
    (+-1) placed at taps ``(i*dh, j*dw)`` of a ``((KH-1)*dh + 1) x ((KW-1)*dw + 1)`` kernel whose
    other taps are pruned (weight +1 under a mask 0: they add exactly 0, docs/format.md §7.3
    "Pruned binary ops"). Returns (weights, kept mask); exact at every stride and padding."""
    dh, dw = dilation
    o, i, kh, kw = wq.shape
    w2 = np.ones((o, i, (kh - 1) * dh + 1, (kw - 1) * dw + 1), wq.dtype)
    k2 = np.zeros(w2.shape, bool)
    w2[:, :, ::dh, ::dw] = wq
    k2[:, :, ::dh, ::dw] = True if keep is None else keep
    return w2, k2


def _pad(name, m):
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return [0, 0]
        d = _pair(getattr(m, "dilation", 1))
        kh, kw = [(k - 1) * dd + 1 for k, dd in zip(m.kernel_size, d)]
        if kh % 2 == 0 or kw % 2 == 0:
            raise ConversionError(f"layer {name!r}: padding='same' needs an odd kernel, got {m.kernel_size}")
        return [(kh - 1) // 2, (kw - 1) // 2]
    return _pair(m.padding)


def is_depthwise(m) -> bool:
    """A float depthwise ``nn.Conv2d`` (``groups = in_channels = out_channels``): the dwconv ops."""
    from onebit.nn.layers import is_binary_layer

    return isinstance(m, nn.Conv2d) and not is_binary_layer(m) and m.groups == m.in_channels == m.out_channels \
        and m.groups != 1


def _groups(m) -> dict:
    """``conv2d_f32``'s ``groups`` attribute (written only when not 1)."""
    return {"groups": int(m.groups)} if m.groups != 1 else {}


def ungrouped(m: nn.Module) -> nn.Module:
    """A grouped float ``nn.Conv2d`` (``1 < groups``) as the dense convolution with its
    block-diagonal kernel: output channel ``o`` of group ``g`` reads the input channels of group
    ``g`` with the group's weights and every other input channel with weight 0. The int8
    convolutions (``conv2d_u8``, ``conv2d_i8``) have no groups; this is the same function with
    ``groups`` times the multiplications, exact in int8 (the zero taps add 0 to the int32 sum; the
    per-output-channel weight scale, ``max |w[o]|``, is the group's). Any other module is returned
    as it is."""
    from onebit.nn.layers import is_binary_layer

    if not isinstance(m, nn.Conv2d) or is_binary_layer(m) or m.groups == 1:
        return m
    g, cin, cout = m.groups, m.in_channels, m.out_channels
    dense = nn.Conv2d(cin, cout, m.kernel_size, m.stride, m.padding, m.dilation, 1, m.bias is not None,
                      m.padding_mode)
    with torch.no_grad():
        dense.weight.zero_()
        ci, co = cin // g, cout // g
        for k in range(g):
            dense.weight[k * co:(k + 1) * co, k * ci:(k + 1) * ci] = m.weight[k * co:(k + 1) * co]
        if m.bias is not None:
            dense.bias.copy_(m.bias)
    return dense.eval()


def _check_conv(name, m, dilation: bool = False, groups: bool = False):
    if (m.groups != 1 and not groups) or (_pair(m.dilation) != [1, 1] and not dilation) or m.padding_mode != "zeros":
        raise ConversionError(f"layer {name!r} ({type(m).__name__}): groups, {'' if dilation else 'dilation '}and "
                              f"non-zero padding modes are not supported")


def _check_binary(name, m):
    kind = type(m).__name__
    if hasattr(m, "groups"):
        _check_conv(name, m, dilation=True)  # a dilated kernel is written as a pruned one (dilate_kernel)
    if m.input_precision != 1 or m.weight_precision != 1:
        raise ConversionError(f"layer {name!r} ({kind}): input and weight quantizers must be "
                              f"1-bit sign quantizers (got {m.input_precision}/{m.weight_precision} bits)")


# ----------------------------------------------------------------------------- tracing

def _blocks() -> tuple:
    """Residual block classes converted as units (their dataflow is in onebit.models.blocks)."""
    try:
        from onebit.models.blocks import BinaryResidualBlock, TransitionBlock
    except ImportError:  # pragma: no cover - the zoo is part of onebit
        return ()
    return (BinaryResidualBlock, TransitionBlock)


def trace(model: nn.Module, input_shape_nchw) -> list:
    """Leaf modules in execution order: [(name, module, input, output)] from one eval forward."""
    from onebit.nn.clip import ClipBlock
    from onebit.nn.layers import is_binary_layer

    calls = []
    hooks = []
    atomic = []  # binary layers own quantizer submodules: hook the layer, not its children
    for name, mod in model.named_modules():
        if any(name.startswith(p + ".") for p in atomic):
            continue
        if is_binary_layer(mod) or isinstance(mod, (ClipBlock,) + _blocks()) or len(list(mod.children())) == 0:
            if name:
                atomic.append(name)
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, name=name: calls.append((name, m, i, o))))
    x = torch.zeros(input_shape_nchw)
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    prev = x
    for name, m, i, o in calls:
        if len(i) != 1 or not torch.is_tensor(i[0]):
            raise ConversionError(f"layer {name!r} ({type(m).__name__}) takes {len(i)} inputs: not supported")
        xi = i[0]
        if xi is not prev and not (xi.dim() == 2 and prev.dim() > 2 and xi.shape[1] == prev[0].numel()
                                   and torch.equal(xi, prev.flatten(1))):
            raise ConversionError(f"layer {name!r} ({type(m).__name__}) does not consume the output of "
                                  f"the previous layer: a functional op or a branch lies between them "
                                  f"(not supported)")
        prev = o
    if y is not prev:
        raise ConversionError("the model output is not the output of its last layer (a functional "
                              "op follows it): not supported")
    return [(n, m, i[0], o) for n, m, i, o in calls]


def build(model: nn.Module, input_shape, mean, std, *, builder=None, layers=None, float_boundary: bool = False):
    """Convert an eval-mode model to (ops, values, tensors). ``input_shape`` is [H, W, C].

    With ``builder`` and ``layers`` (``[(name, module, None, None)]``): apply those layers to that
    builder's current value and return nothing (:mod:`onebit.convert.dag` drives a builder through
    the nodes of a general graph this way). ``float_boundary``: the first convolution in float32
    (``conv2d_f32``) instead of int8."""
    from onebit.nn.clip import ClipBlock
    from onebit.nn.layers import is_binary_layer
    from onebit.nn.planes import BitPlanes

    h, w, c = input_shape
    calls = trace(model, (1, c, h, w)) if layers is None else layers
    bld = _Builder(input_shape, float_boundary) if builder is None else builder
    blocks = _blocks()
    for name, m, _xin, _out in calls:
        if bld.reshape is not None and not is_binary_layer(m):
            raise ConversionError(f"layer {bld.reshape[0]!r} (Reshape) feeds {name!r} ({type(m).__name__}): "
                                  f"supported before a 1x1 binary convolution only")
        if bld.pad is not None and not isinstance(m, nn.Conv2d):
            raise ConversionError(f"layer {bld.pad[0]!r} (padding) feeds {name!r} ({type(m).__name__}): a padding "
                                  f"layer is supported only right before a convolution (it becomes its padding)")
        # flattening (nn.Flatten or functional) is done by the dense layer that reads the map
        if blocks and isinstance(m, blocks[0]):
            bld.residual_block(name, m)
        elif blocks and isinstance(m, blocks[1]):
            bld.transition_block(name, m)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            bld.global_pool(name, m)
        elif is_binary_layer(m) and m.input_precision != 1 and isinstance(m, nn.Conv2d):
            bld.first_conv(name, m, mean, std)  # binary weights on the float image
        elif is_binary_layer(m):
            bld.binary(name, m)
        elif isinstance(m, BitPlanes):
            bld.bit_planes(name, m, mean, std)
        elif is_depthwise(m):
            bld.depthwise(name, m)
        elif isinstance(m, nn.Conv2d) and (bld.pending is not None or bld.value().kind in ("int8", "f32")):
            # on a layer's output (int8 or float32), not on the image
            bld.finalize("f32", name)
            bld.float_conv(name, m)
        elif isinstance(m, nn.Conv2d):
            bld.first_conv(name, m, mean, std)
        elif isinstance(m, nn.Linear):
            bld.float_linear(name, m)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            bld.batchnorm(name, m)
        elif isinstance(m, (nn.Hardtanh, nn.ReLU, nn.PReLU)):
            bld.activation(name, m)
        elif isinstance(m, nn.MaxPool2d):
            bld.pool(name, m)
        elif isinstance(m, ClipBlock):
            bld.clip(name, m)
        elif isinstance(m, nn.ConstantPad2d):
            bld.explicit_pad(name, m)
            continue
        elif _is_nhwc_reshape(m):
            bld.nhwc_reshape(name, m)
            continue
        elif isinstance(m, SKIP + (nn.Flatten,)):
            continue
        else:
            raise ConversionError(f"layer {name!r} of type {type(m).__name__} is not supported by the "
                                  f"converter")
    if layers is not None:
        return None
    if bld.pad is not None:
        raise ConversionError(f"layer {bld.pad[0]!r} (padding) is the last layer: it must feed a convolution")
    return logits(bld)


def logits(bld: _Builder):
    """Finish the graph: the current value, float logits, as (ops, values, tensors)."""
    bld.finalize("f32", "<logits>")
    x = bld.value()
    if len(x.shape) == 3 and x.shape[0] * x.shape[1] == 1:
        bld.flatten("logits")
        x = bld.value()
    if x.kind != "f32" or len(x.shape) != 1:
        raise ConversionError(f"the model must end in logits (a Linear layer), got {x.kind} {list(x.shape)}")
    return bld.ops, bld.values, bld.tensors
