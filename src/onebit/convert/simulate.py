"""Integer simulation: a PyTorch forward pass that computes exactly the integers the engine computes.

:func:`simulate` converts a model (or loads a ``.onebit`` file) and returns a
:class:`IntegerSimulation` module that interprets the *same* graph and folded tensors the
engine runs, with the engine's arithmetic (docs/format.md §3-5):

- binary conv / dense: ``F.conv2d`` of +-1 values with zero padding — exact integers
  (true-zero padding: out-of-bounds taps add nothing). The convolutions run in float32 when
  every partial sum is an integer below 2^24 in magnitude (then any summation order is exact),
  else in float64 (exact below 2^53);
- the uint8 input conv: ``acc = conv(u - zp, q)`` (exact integers, see above) where the
  padding is ``u = zp`` (0 after the shift);
- stage (a) ``bit = y < t`` (d = +1) / ``y > t`` (d = -1); stage (b) int64
  ``clamp((y*M + B + 2^(S-1)) >> S, -127, 127)`` (arithmetic shift); stage (c)
  ``float32(y) * scale + bias`` (two roundings, no FMA);
- max pooling on +-1 / int8 values with ignored padding; flatten in NHWC order;
- the float head ``x @ W.T + b`` in float32 (the engine's summation order may differ: logits
  agree to float32 rounding there, everything before is bit-exact).
Activations are kept NCHW: bits as float32 +-1, int8 as float32 integers (exact).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from onebit.runtime.format import ModelFile


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
            if op.type in ("bconv2d", "bdense"):
                bound = a_["accumulator_bound"]
            elif op.type == "conv2d_u8":
                bound = 255 * 127 * a_["kernel"][0] * a_["kernel"][1] * a_["in_channels"]
            elif op.type == "conv2d_i8":
                bound = 127 * 127 * a_["kernel"][0] * a_["kernel"][1] * a_["in_channels"]
            else:
                bound = None
            if bound is not None:
                self._dtype[op.name] = torch.float32 if bound < 2**24 else torch.float64
            if op.type == "bconv2d":
                w = bits.unpack(model_file.tensors[op.tensors["weight"]], op.attrs["in_channels"])
                self._w[op.name] = torch.from_numpy(w.astype(np.float64)).permute(0, 3, 1, 2).contiguous()
            elif op.type == "bdense":
                w = bits.unpack(model_file.tensors[op.tensors["weight"]], op.attrs["in_features"])
                self._w[op.name] = torch.from_numpy(w.astype(np.float64))
            elif op.type in ("conv2d_u8", "conv2d_i8"):
                q = model_file.tensors[op.tensors["weight"]].astype(np.float64)
                self._w[op.name] = torch.from_numpy(q).permute(0, 3, 1, 2).contiguous()

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
            else:
                env[op.output] = self._run(op, env[op.inputs[0]])
        out = env[self.file.output_name]
        return (out, env) if return_values else out

    def _conv(self, op, x):
        dt, a = self._dtype[op.name], op.attrs
        w = self._w32.get(op.name) if dt == torch.float32 else self._w[op.name]
        if w is None:
            w = self._w32[op.name] = self._w[op.name].to(torch.float32)
        y = F.conv2d(x.to(dt), w, stride=a["stride"], padding=a["padding"])
        return y

    def _add(self, op, a, b):
        if self.values[op.inputs[0]].kind == "f32":
            return a.to(torch.float32) + b.to(torch.float32)
        s = op.attrs["shift"]
        q = (a.to(torch.int64) * op.attrs["ma"] + b.to(torch.int64) * op.attrs["mb"] + (1 << (s - 1))) >> s
        return q.clamp(-127, 127).to(torch.float32)

    def _avgpool(self, op, x):
        a = op.attrs
        k, st, p = a["kernel"], a["stride"], a["padding"]
        if self.values[op.inputs[0]].kind == "f32":
            return F.avg_pool2d(x.to(torch.float32), k, st, p, count_include_pad=a["count_include_pad"])
        # int8: exact window sum s and divisor d, q = clamp(floor((2s + d) / 2d), -127, 127)
        x = x.to(torch.float64)
        s = F.avg_pool2d(x, k, st, p, count_include_pad=True, divisor_override=1)
        if a["count_include_pad"]:
            d = torch.full_like(s, float(k[0] * k[1]))
        else:
            ones = torch.ones_like(x[:1, :1])
            d = F.avg_pool2d(ones, k, st, p, count_include_pad=True, divisor_override=1)
        q = torch.floor((2 * s + d) / (2 * d))
        return q.clamp(-127, 127).to(torch.float32)

    def _tensor(self, op, role):
        return self._t[op.tensors[role]]

    def _run(self, op, x):
        a = op.attrs
        if op.type == "conv2d_u8":
            zp = self._tensor(op, "zero_point").to(torch.float32).view(1, -1, 1, 1)
            y = self._conv(op, x - zp)
            return self._stage(op, y)
        if op.type in ("bconv2d", "conv2d_i8"):  # zero padding: true zero / int8 zero point 0
            y = self._conv(op, x)
            return self._stage(op, y)
        if op.type == "conv1x1_f32":  # float32 1x1 conv (a dense layer per pixel)
            w, b = self._tensor(op, "weight"), self._tensor(op, "bias")
            y = x.to(torch.float32).permute(0, 2, 3, 1) @ w.T + b
            return y.permute(0, 3, 1, 2)
        if op.type == "avgpool2d":
            return self._avgpool(op, x)
        if op.type == "global_avgpool":
            if self.values[op.inputs[0]].kind == "int8":
                # float32(sum) * float32(float64(float32(scale)) / (H*W)), as the engine
                hw = x.shape[2] * x.shape[3]
                m = np.float32(np.float64(np.float32(self.values[op.inputs[0]].scale)) / hw)
                return x.to(torch.float64).sum(dim=(2, 3)).to(torch.float32) * torch.tensor(m)
            return x.to(torch.float32).mean(dim=(2, 3))
        if op.type == "bdense":
            dt = self._dtype[op.name]
            w = self._w[op.name] if dt == torch.float64 else self._w32.setdefault(op.name, self._w[op.name].float())
            return self._stage(op, (x.to(dt) @ w.T))
        if op.type == "maxpool2d":
            return F.max_pool2d(x, a["kernel"], a["stride"], a["padding"])
        if op.type == "flatten":
            return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x
        if op.type == "bitpack":  # int8 / float32 -> +-1, bit = (x < 0)
            return torch.where(x < 0, -1.0, 1.0)
        if op.type == "dequantize":  # float32(q) * float32(scale), one rounding
            return x.to(torch.float32) * torch.tensor(self.values[op.inputs[0]].scale, dtype=torch.float32)
        if op.type == "clamp_f32":
            return x.clamp(torch.tensor(a["min"], dtype=torch.float32), torch.tensor(a["max"], dtype=torch.float32))
        if op.type == "dense_f32":
            w, b = self._tensor(op, "weight"), self._tensor(op, "bias")
            return x.to(torch.float32) @ w.T + b
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
