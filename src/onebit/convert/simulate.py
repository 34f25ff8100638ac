"""Integer simulation: a PyTorch forward pass that computes exactly the integers the engine computes.

:func:`simulate` converts a model (or loads a ``.onebit`` file) and returns a
:class:`IntegerSimulation` module that interprets the *same* graph and folded tensors the
engine runs, with the engine's arithmetic (docs/format.md §3-5):

- binary conv / dense: ``F.conv2d`` of +-1 values padded explicitly (``padding`` before the
  input, ``padding_end`` after it) with 0 (true zero: out-of-bounds taps add nothing) or +1
  (``pad_value`` 1, one-padding: they add like a pixel of +1s) — exact integers. A pruned op's weights (``weight_mask``)
  are ternary: pruned weights are 0 and add nothing, as in the engine. The convolutions run in float32 when
  every partial sum is an integer below 2^24 in magnitude (then any summation order is exact),
  else in float64 (exact below 2^53);
- the int8 depthwise conv: ``F.conv2d(..., groups=C)`` of int8 values with zero padding (exact);
- the uint8 input conv: ``acc = conv(u - zp, q)`` (exact integers, see above) where the
  padding is ``u = zp`` (0 after the shift);
- stage (a) ``bit = y < t`` (d = +1) / ``y > t`` (d = -1); stage (b) int64
  ``clamp((y*M + B + 2^(S-1)) >> S, -127, 127)`` (arithmetic shift); stage (c)
  ``float32(y) * scale + bias`` (two roundings, no FMA);
- max pooling on +-1 / int8 / float32 values with ignored padding; flatten in NHWC order; channel
  concatenation (``torch.cat`` along the channels, exact for every kind);
- the float layers in the engine's documented float32 operation order, so that they too are
  bit-exact: ``dense_f32`` and ``conv1x1_f32`` as the ``dense_float`` contract
  (src/cpp/onebit/densef.h: eight partial sums over ``i % 8``, products rounded, no FMA,
  combined ``((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))``, then ``+ bias``; :func:`dense_f32`),
  ``dwconv2d_f32`` tap by tap in row-major order (:func:`dwconv2d_f32`),
  ``conv2d_f32`` as ``dense_f32`` over each pixel's taps in (i, j, c) order (:func:`conv2d_f32`),
  float average pooling and global average pooling as taps summed in row-major order from
  +0.0 and divided by ``float32(d)`` (src/cpp/onebit/pool.h; :func:`avgpool_f32`,
  :func:`global_avgpool_f32`), float adds, clamps and dequantization (one rounding each), the
  per-channel ``affine_f32`` (product rounded, then the sum), ``prelu_f32`` and ``mul_channels_f32``
  (one rounding each) and ``sigmoid_f32`` (float64 logistic with the C library's ``exp``, rounded
  once: :func:`sigmoid_f32`).
Activations are kept NCHW: bits as float32 +-1, int8 as float32 integers (exact).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from onebit.runtime.format import ModelFile
from onebit.runtime.geometry import output_size


class IntegerSimulation(nn.Module):
    """The engine graph of a model file as a torch module (inference only, no gradients)."""

    def __init__(self, model_file: ModelFile):
        super().__init__()
        self.file = model_file
        self.ops = model_file.ops
        self.values = model_file.values
        spec = model_file.input_spec
        self.mean = np.asarray(spec["mean"], np.float64)
        self.std = np.asarray(spec["std"], np.float64)
        self._t = {}
        for name, arr in model_file.tensors.items():
            if arr.dtype == np.uint64:
                continue  # packed weights are unpacked per op below
            self._t[name] = torch.from_numpy(arr.copy())
        self._w = {}
        self._w32 = {}
        from onebit import bits

        self._dtype = {}
        for op in self.ops:
            # |any partial sum| <= bound: float32 is exact for integers up to 2^24
            a_ = op.attrs
            if op.type in ("bconv2d", "bdense", "bconv2d_planes"):
                bound = a_["accumulator_bound"]
            elif op.type == "conv2d_u8":
                bound = 255 * 127 * a_["kernel"][0] * a_["kernel"][1] * a_["in_channels"]
            elif op.type == "conv2d_i8":
                bound = 127 * 127 * a_["kernel"][0] * a_["kernel"][1] * a_["in_channels"]
            elif op.type == "dwconv2d_i8":
                bound = 128 * 127 * a_["kernel"][0] * a_["kernel"][1]
            else:
                bound = None
            if bound is not None:
                self._dtype[op.name] = torch.float32 if bound < 2**24 else torch.float64
            if op.type in ("bconv2d", "bdense"):
                cin = op.attrs["in_channels"] if op.type == "bconv2d" else op.attrs["in_features"]
                w = bits.unpack(model_file.weight(op), cin).astype(np.float64)
                mask = model_file.weight_mask(op)  # full or expanded compact mask (format.md §7.3)
                if mask is not None:  # pruned weights are exact zeros (bit 1 = kept)
                    w *= bits.unpack(mask, cin) < 0
                w = torch.from_numpy(w)
                self._w[op.name] = w.permute(0, 3, 1, 2).contiguous() if op.type == "bconv2d" else w
            elif op.type == "bconv2d_planes":  # odd integer weights sum_j 2^j s_j
                from onebit.bitplanes import planes_weight_values

                w = planes_weight_values(model_file.tensors[op.tensors["weight"]], a_.get("weight_layout", "taps"),
                                         a_["kernel"], a_["in_channels"])
                self._w[op.name] = torch.from_numpy(w.astype(np.float64)).permute(0, 3, 1, 2).contiguous()
            elif op.type in ("conv2d_u8", "conv2d_i8"):
                q = model_file.tensors[op.tensors["weight"]].astype(np.float64)
                self._w[op.name] = torch.from_numpy(q).permute(0, 3, 1, 2).contiguous()
            elif op.type == "dwconv2d_i8":  # (KH, KW, C) -> (C, 1, KH, KW), groups = C
                q = model_file.tensors[op.tensors["weight"]].astype(np.float64)
                self._w[op.name] = torch.from_numpy(q).permute(2, 0, 1).unsqueeze(1).contiguous()

    def to_uint8(self, x) -> torch.Tensor:
        """uint8 NHWC as given; float NCHW normalized ``(u/255 - mean)/std`` mapped back to uint8
        by rounding (exact for images that came from uint8 data), clamped to [0, 255]."""
        return to_uint8(x, self.mean, self.std, self.values[self.file.input_name].shape)

    @torch.no_grad()
    def forward(self, x, return_values: bool = False):
        u = self.to_uint8(x)
        env = {self.file.input_name: u.permute(0, 3, 1, 2).to(torch.float32)}
        for op in self.ops:
            if op.type == "add":
                env[op.output] = self._add(op, env[op.inputs[0]], env[op.inputs[1]])
            elif op.type == "concat":  # channels of the first input, then of the second (exact)
                env[op.output] = torch.cat([env[op.inputs[0]], env[op.inputs[1]]], dim=1)
            elif op.type == "mul_channels_f32":  # x[n, c, ...] * g[n, c], one rounding
                x, g = env[op.inputs[0]].to(torch.float32), env[op.inputs[1]].to(torch.float32)
                env[op.output] = x * g.view(g.shape + (1,) * (x.dim() - 2))
            else:
                env[op.output] = self._run(op, env[op.inputs[0]])
        out = env[self.file.output_name]
        return (out, env) if return_values else out

    def _conv(self, op, x):
        dt, a = self._dtype[op.name], op.attrs
        w = self._w32.get(op.name) if dt == torch.float32 else self._w[op.name]
        if w is None:
            w = self._w32[op.name] = self._w[op.name].to(torch.float32)
        (ph, pw), (eh, ew) = a["padding"], a.get("padding_end", a["padding"])
        x = F.pad(x.to(dt), (pw, ew, ph, eh), value=float(a.get("pad_value", 0)))
        groups = a["in_channels"] if op.type == "dwconv2d_i8" else 1
        return F.conv2d(x, w, stride=a["stride"], groups=groups)

    def _add(self, op, a, b):
        if self.values[op.inputs[0]].kind == "f32":
            return a.to(torch.float32) + b.to(torch.float32)
        s = op.attrs["shift"]
        q = (a.to(torch.int64) * op.attrs["ma"] + b.to(torch.int64) * op.attrs["mb"] + (1 << (s - 1))) >> s
        return q.clamp(-127, 127).to(torch.float32)

    def _avgpool(self, op, x):
        a = op.attrs
        k, st, p, ceil = a["kernel"], a["stride"], a["padding"], a.get("ceil_mode", False)
        if self.values[op.inputs[0]].kind == "f32":
            return avgpool_f32(x.to(torch.float32), k, st, p, a["count_include_pad"], ceil)
        # int8: exact window sum s and divisor d, q = clamp(floor((2s + d) / 2d), -127, 127)
        s = sum(_window_taps(x.to(torch.float64), k, st, p, ceil, 0.0))
        d = pool_divisor(x.shape[-2:], k, st, p, a["count_include_pad"], ceil)
        q = torch.floor((2 * s + d) / (2 * d))
        return q.clamp(-127, 127).to(torch.float32)

    def _normalized(self, op, x):
        """conv2d_f32's input: float32, or the uint8 image as float32(u) * in_scale + in_offset."""
        if "in_scale" not in op.tensors:
            return x.to(torch.float32)
        shape = (1, -1, 1, 1)
        return (x.to(torch.float32) * self._tensor(op, "in_scale").view(shape)) + self._tensor(op, "in_offset").view(shape)

    def _tensor(self, op, role):
        return self._t[op.tensors[role]]

    def _run(self, op, x):
        a = op.attrs
        if op.type == "conv2d_u8":
            zp = self._tensor(op, "zero_point").to(torch.float32).view(1, -1, 1, 1)
            y = self._conv(op, x - zp)
            return self._stage(op, y)
        if op.type == "bitplanes":  # u8 (as float) -> +-1 planes, +1 where the bit is 1
            from onebit.nn.planes import pixel_planes

            return pixel_planes(x, a["planes"])
        if op.type in ("bconv2d", "bconv2d_planes", "conv2d_i8", "dwconv2d_i8"):  # zero padding: true zero / int8 0
            y = self._conv(op, x)
            return self._stage(op, y)
        if op.type == "dwconv2d_f32":
            return dwconv2d_f32(x, self._tensor(op, "weight"), self._tensor(op, "bias"), a["stride"], a["padding"],
                                a.get("padding_end"))
        if op.type == "conv2d_f32":
            return conv2d_f32(self._normalized(op, x), self._tensor(op, "weight"), self._tensor(op, "bias"),
                              a["stride"], a["padding"], a.get("padding_end"), a.get("groups", 1))
        if op.type == "conv1x1_f32":  # float32 1x1 conv: the engine's dense layer per pixel
            w, b = self._tensor(op, "weight"), self._tensor(op, "bias")
            n, c, h, wd = x.shape
            y = dense_f32(x.to(torch.float32).permute(0, 2, 3, 1).reshape(-1, c), w, b)
            return y.reshape(n, h, wd, -1).permute(0, 3, 1, 2)
        if op.type == "avgpool2d":
            return self._avgpool(op, x)
        if op.type == "global_avgpool":
            if self.values[op.inputs[0]].kind == "int8":
                # float32(sum) * float32(float64(float32(scale)) / (H*W)), as the engine
                hw = x.shape[2] * x.shape[3]
                m = np.float32(np.float64(np.float32(self.values[op.inputs[0]].scale)) / hw)
                return x.to(torch.float64).sum(dim=(2, 3)).to(torch.float32) * torch.tensor(m)
            return global_avgpool_f32(x)
        if op.type == "bdense":
            dt = self._dtype[op.name]
            w = self._w[op.name] if dt == torch.float64 else self._w32.setdefault(op.name, self._w[op.name].float())
            return self._stage(op, (x.to(dt) @ w.T))
        if op.type == "maxpool2d":
            return F.max_pool2d(x, a["kernel"], a["stride"], a["padding"], ceil_mode=a.get("ceil_mode", False))
        if op.type == "flatten":
            return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x
        if op.type == "bitpack":  # int8 / float32 -> +-1, bit = (x < 0)
            return torch.where(x < 0, -1.0, 1.0)
        if op.type == "dequantize":  # float32(q) * float32(scale), one rounding
            return x.to(torch.float32) * torch.tensor(self.values[op.inputs[0]].scale, dtype=torch.float32)
        if op.type == "affine_f32":  # per channel, float32: product rounded, then the sum
            shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
            x = x.to(torch.float32) * self._tensor(op, "scale").view(shape)
            return x + self._tensor(op, "bias").view(shape)
        if op.type == "prelu_f32":  # per channel: x >= 0 ? x : slope[c] * x (one rounding)
            x = x.to(torch.float32)
            return torch.where(x >= 0, x, x * self._tensor(op, "slope").view((1, -1) + (1,) * (x.dim() - 2)))
        if op.type == "sigmoid_f32":
            return sigmoid_f32(x)
        if op.type == "clamp_f32":
            if "lower" in op.tensors:  # per channel: dimension 1 of NCHW / (N, C)
                shape = (1, -1) + (1,) * (x.dim() - 2)
                return x.clamp(self._tensor(op, "lower").view(shape), self._tensor(op, "upper").view(shape))
            return x.clamp(torch.tensor(a["min"], dtype=torch.float32), torch.tensor(a["max"], dtype=torch.float32))
        if op.type == "dense_f32":
            return dense_f32(x.to(torch.float32), self._tensor(op, "weight"), self._tensor(op, "bias"))
        raise NotImplementedError(op.type)  # unreachable: the loader validated op types

    def _stage(self, op, y):
        shape = (1, -1, 1, 1) if y.dim() == 4 else (1, -1)
        out = op.attrs["output"]
        if out == "bits":
            t = self._tensor(op, "threshold").to(y.dtype).view(shape)
            d = self._tensor(op, "direction").view(shape)
            bit = torch.where(d > 0, y < t, y > t)
            return torch.where(bit, -1.0, 1.0)
        if out == "int8":
            m = self._tensor(op, "multiplier").to(torch.int64).view(shape)
            b = self._tensor(op, "bias").to(torch.int64).view(shape)
            s = op.attrs["shift"]
            q = (y.to(torch.int64) * m + b + (1 << (s - 1))) >> s
            return q.clamp(-127, 127).to(torch.float32)
        scale = self._tensor(op, "scale").view(shape)
        bias = self._tensor(op, "bias").view(shape)
        return y.to(torch.float32) * scale + bias


def dense_f32(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, block: int = 1 << 22) -> torch.Tensor:
    """``x @ w.T + b`` (float32, ``x`` (P, in), ``w`` (out, in)) in the engine's operation order.

    The ``dense_float`` contract (src/cpp/onebit/densef.h, docs/kernels.md): eight partial sums
    ``acc[j]`` from +0.0, element ``i`` added as ``acc[i % 8] += float32(x[i] * w[i])`` (product
    rounded, then the sum; zero products past ``in``), then
    ``((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7)) + bias``. Every step is
    one IEEE float32 operation in PyTorch too, so the result equals the engine's bit for bit.
    Rows are processed in chunks of at most ``block`` products per step.
    """
    x, w, b = x.to(torch.float32), w.to(torch.float32), b.to(torch.float32)
    p, n = x.shape
    o = w.shape[0]
    n8 = -(-n // 8) * 8
    if n8 != n:  # padded products are +-0: adding them changes no partial sum
        x = F.pad(x, (0, n8 - n))
        w = F.pad(w, (0, n8 - n))
    wr = w.reshape(o, n8 // 8, 8)
    xr = x.reshape(p, n8 // 8, 8)
    out = torch.empty(p, o, dtype=torch.float32)
    rows = max(1, block // max(1, o * 8))
    for r0 in range(0, p, rows):
        xs = xr[r0:r0 + rows]
        acc = torch.zeros(xs.shape[0], o, 8, dtype=torch.float32)
        for t in range(n8 // 8):
            acc = acc + xs[:, None, t, :] * wr[None, :, t, :]
        a = acc.unbind(-1)
        s = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
        out[r0:r0 + rows] = s + b
    return out


def _conv_taps(x, k, stride, padding, padding_end):
    """The (i, j) taps of every convolution window in row-major order: strided views of the input
    zero padded ``padding`` before (top, left) and ``padding_end`` after it (default ``padding``)."""
    (kh, kw), (sh, sw), (ph, pw) = k, stride, padding
    eh, ew = padding if padding_end is None else padding_end
    h, wd = x.shape[-2:]
    oh, ow = output_size(h, kh, sh, ph, padding_end=eh), output_size(wd, kw, sw, pw, padding_end=ew)
    xp = F.pad(x, (pw, ew, ph, eh))
    return [xp[..., i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] for i in range(kh) for j in range(kw)]


def dwconv2d_f32(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride, padding, padding_end=None) -> torch.Tensor:
    """float32 depthwise convolution in the engine's order (``dwconv2d_f32``): ``acc = +0.0``, then
    ``acc = acc + x * w[i, j]`` (product rounded, then the sum) over the taps in row-major order,
    then ``acc + bias``; padded taps (``padding`` before, ``padding_end`` after the input) are
    skipped (adding their +-0 products changes no sum that starts at +0.0). ``x`` NCHW float32,
    ``w`` (KH, KW, C); returns NCHW."""
    acc = None
    kh, kw, c = w.shape
    for k, tap in enumerate(_conv_taps(x.to(torch.float32), (kh, kw), stride, padding, padding_end)):
        prod = tap * w[k // kw, k % kw].view(1, c, 1, 1)
        acc = torch.zeros_like(prod) + prod if acc is None else acc + prod
    return acc + b.view(1, c, 1, 1)


def conv2d_f32(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride, padding, padding_end=None,
               groups: int = 1) -> torch.Tensor:
    """float32 convolution in the engine's order (``conv2d_f32``): every output pixel's taps in
    (i, j, c) order, padded taps 0.0 (``padding`` before, ``padding_end`` after the input), summed
    as :func:`dense_f32` with the weights (Cout, KH, KW, Cin / groups) flattened alike; with
    ``groups``, group ``g`` of the output channels reads group ``g`` of the input channels.
    ``x`` NCHW float32; returns NCHW."""
    n, c = x.shape[:2]
    cout, kh, kw, _ = w.shape
    cg, og = c // groups, cout // groups
    taps = _conv_taps(x.to(torch.float32), (kh, kw), stride, padding, padding_end)
    oh, ow = taps[0].shape[-2:]
    taps = torch.stack(taps, 1).permute(0, 3, 4, 1, 2)  # (N, OH, OW, KH*KW, C)
    ys = [dense_f32(taps[..., g * cg:(g + 1) * cg].reshape(n * oh * ow, kh * kw * cg),
                    w[g * og:(g + 1) * og].reshape(og, -1), b[g * og:(g + 1) * og]) for g in range(groups)]
    return torch.cat(ys, 1).reshape(n, oh, ow, cout).permute(0, 3, 1, 2)


def pool_divisor(hw, k, s, p, count_include_pad: bool, ceil_mode: bool = False) -> torch.Tensor:
    """(OH, OW) float64 divisor of every average-pooling window, PyTorch's rule: the window
    clipped to the padded input (``count_include_pad``) or to the input (otherwise)."""
    axes = []
    for size, kk, ss, pp in zip(hw, k, s, p):
        o = output_size(size, kk, ss, pp, ceil_mode)
        start = torch.arange(o, dtype=torch.float64) * ss - pp
        end = torch.clamp(start + kk, max=size + pp)
        if not count_include_pad:
            start, end = start.clamp(min=0), end.clamp(max=size)
        axes.append(end - start)
    return axes[0][:, None] * axes[1][None, :]


def _window_taps(x, k, s, p, ceil_mode, fill):
    """The (i, j) taps of every pooling window in row-major window order: strided views of the
    input padded with ``fill`` (left/top ``p``, right/bottom as far as the last window reaches)."""
    h, w = x.shape[-2:]
    oh, ow = (output_size(d, kk, ss, pp, ceil_mode) for d, kk, ss, pp in zip((h, w), k, s, p))
    rb = max(0, (oh - 1) * s[0] + k[0] - h - p[0])
    rr = max(0, (ow - 1) * s[1] + k[1] - w - p[1])
    xp = F.pad(x, (p[1], rr, p[0], rb), value=fill)
    for i in range(k[0]):
        for j in range(k[1]):
            yield xp[..., i:i + s[0] * (oh - 1) + 1:s[0], j:j + s[1] * (ow - 1) + 1:s[1]]


def avgpool_f32(x: torch.Tensor, k, s, p, count_include_pad: bool, ceil_mode: bool = False) -> torch.Tensor:
    """float32 average pooling in the engine's order: in-bounds taps summed in row-major window
    order from +0.0 (padded taps add +0.0, which changes no sum that starts at +0.0), then
    divided by ``float32(d)`` (:func:`pool_divisor`)."""
    acc = None
    for tap in _window_taps(x.to(torch.float32), k, s, p, ceil_mode, 0.0):
        acc = torch.zeros_like(tap) + tap if acc is None else acc + tap
    d = pool_divisor(x.shape[-2:], k, s, p, count_include_pad, ceil_mode).to(torch.float32)
    return acc / d


def global_avgpool_f32(x: torch.Tensor) -> torch.Tensor:
    """float32 (N, C, H, W) -> (N, C): pixels summed in row-major order from +0.0, divided by
    ``float32(H*W)`` (the engine's ``global_avgpool_float``)."""
    x = x.to(torch.float32)
    acc = torch.zeros(x.shape[:2], dtype=torch.float32)
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            acc = acc + x[:, :, i, j]
    return acc / torch.tensor(float(x.shape[2] * x.shape[3]), dtype=torch.float32)


def _logistic(v: float) -> float:
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def sigmoid_f32(x: torch.Tensor) -> torch.Tensor:
    """``sigmoid_f32``: the logistic function in float64 with the C library's ``exp`` of a
    non-positive argument (Python's ``math.exp`` calls the libm the engine links), rounded once to
    float32 (the engine's ``sigmoid_f32``, src/cpp/onebit/runtime/executor.cpp)."""
    v = x.to(torch.float32).double().reshape(-1).tolist()
    out = np.array([_logistic(a) for a in v], dtype=np.float64).astype(np.float32)
    return torch.from_numpy(out).reshape(x.shape)


def to_uint8(x, mean, std, hwc) -> torch.Tensor:
    """Map a model input to the uint8 NHWC image the engine reads (see IntegerSimulation.to_uint8)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if x.dtype == torch.uint8:
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(hwc):
            raise ValueError(f"uint8 input must be NHWC (N, {', '.join(map(str, hwc))}), got {tuple(x.shape)}")
        return x
    h, w, c = hwc
    if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
        raise ValueError(f"float input must be normalized NCHW (N, {c}, {h}, {w}), got {tuple(x.shape)}")
    m = torch.as_tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    u = torch.round((x.to(torch.float64) * s + m) * 255.0).clamp(0, 255).to(torch.uint8)
    return u.permute(0, 2, 3, 1).contiguous()


def simulate(model, *, input_spec=None) -> IntegerSimulation:
    """Integer simulation of ``model`` (an ``nn.Module`` to convert, a ``ModelFile``, or a path).

    The module accepts uint8 NHWC images or float NCHW normalized tensors and returns float32
    logits; ``forward(x, return_values=True)`` also returns every intermediate value.
    """
    from onebit.runtime import format as fmt

    if isinstance(model, ModelFile):
        mf = model
    elif isinstance(model, nn.Module):
        from onebit.convert.export import to_bytes

        mf = fmt.loads(to_bytes(model, input_spec=input_spec))
    else:
        mf = fmt.load(model)
    return IntegerSimulation(mf).eval()
