"""Torch modules for the Keras operations that plain ``torch.nn`` / ``onebit.nn`` do not match.

All work on NCHW tensors (the imported model's layout); each docstring gives the Keras layer it
reproduces and how.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KerasGraph", "PaddedConv", "KerasPool2d", "KerasPad2d", "NHWCFlatten", "Reshape",
           "Rescaling", "Normalization", "Merge", "Concatenate", "ConcatAdd", "FullPReLU", "HardSigmoid"]


class KerasPad2d(nn.Module):
    """``ZeroPadding2D`` (or a constant padding): pads (top, bottom, left, right) with ``value``."""

    def __init__(self, top: int, bottom: int, left: int, right: int, value: float = 0.0):
        super().__init__()
        self.pads = (int(left), int(right), int(top), int(bottom))
        self.value = float(value)

    def forward(self, x):
        return F.pad(x, self.pads, value=self.value)

    def extra_repr(self):
        left, right, top, bottom = self.pads
        return f"top={top}, bottom={bottom}, left={left}, right={right}, value={self.value}"


class PaddedConv(nn.Module):
    """A convolution whose padding torch's symmetric ``padding=`` cannot express: Keras ``"same"``
    with an odd total (the extra row/column goes to the bottom/right), or Larq's
    ``pad_values=1`` (one-padding of the binarized input).

    ``conv`` is the ``nn.Conv2d`` / ``BinaryConv2d`` with ``padding=0`` holding the weights. For a
    binary conv the input is quantized first and then padded with ``value``, as Larq does, so a
    zero pad is a true zero and a one pad is +1.
    """

    def __init__(self, conv: nn.Module, top: int, bottom: int, left: int, right: int, value: float = 0.0):
        super().__init__()
        self.conv = conv
        self.pad = KerasPad2d(top, bottom, left, right, value)

    def forward(self, x):
        from onebit.nn.layers import is_binary_layer

        c = self.conv
        if is_binary_layer(c):
            x = self.pad(c.input_quantizer(x))
            return F.conv2d(x, c.quantized_weight(), c.bias, c.stride, 0, c.dilation, c.groups)
        return c(self.pad(x))


class KerasPool2d(nn.Module):
    """Keras ``MaxPool2D`` / ``AveragePooling2D`` with ``padding="same"`` and uneven padding: max
    ignores the padding (padded with -inf), average divides by the number of real inputs."""

    def __init__(self, kind: str, kernel, stride, top: int, bottom: int, left: int, right: int):
        super().__init__()
        self.kind, self.kernel, self.stride = kind, tuple(kernel), tuple(stride)
        self.pads = (int(left), int(right), int(top), int(bottom))

    def forward(self, x):
        if self.kind == "max":
            return F.max_pool2d(F.pad(x, self.pads, value=float("-inf")), self.kernel, self.stride)
        s = F.avg_pool2d(F.pad(x, self.pads), self.kernel, self.stride)
        ones = F.pad(torch.ones_like(x[:1, :1]), self.pads)
        return s / F.avg_pool2d(ones, self.kernel, self.stride)

    def extra_repr(self):
        return f"{self.kind}, kernel={self.kernel}, stride={self.stride}, pads(l,r,t,b)={self.pads}"


class NHWCFlatten(nn.Module):
    """Keras ``Flatten`` of a feature map, in Keras' NHWC element order."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x.flatten(1)


class Reshape(nn.Module):
    """Keras ``Reshape(target_shape)``: reshapes in NHWC order; a 3-d target is returned as NCHW."""

    def __init__(self, target_shape):
        super().__init__()
        self.target_shape = tuple(int(v) for v in target_shape)

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        y = x.reshape((x.shape[0],) + self.target_shape)
        return y.permute(0, 3, 1, 2) if y.dim() == 4 else y

    def extra_repr(self):
        return f"target_shape={self.target_shape}"


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, 1, 1) if x.dim() == 4 else v.view(1, -1)


class Rescaling(nn.Module):
    """Keras ``Rescaling``: ``x * scale + offset`` (scalars)."""

    def __init__(self, scale: float, offset: float):
        super().__init__()
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x):
        return x * self.scale + self.offset

    def extra_repr(self):
        return f"scale={self.scale}, offset={self.offset}"


class Normalization(nn.Module):
    """Keras ``Normalization`` over the channel axis: ``(x - mean) / max(sqrt(variance), 1e-7)``."""

    def __init__(self, mean, variance):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(-1))
        self.register_buffer("variance", torch.as_tensor(variance, dtype=torch.float32).reshape(-1))

    def forward(self, x):
        m, v = _per_channel(self.mean, x), _per_channel(self.variance, x)
        return (x - m) / torch.clamp(torch.sqrt(v), min=1e-7)


class Merge(nn.Module):
    """Keras ``Add`` / ``Subtract`` / ``Multiply`` / ``Average`` / ``Maximum`` / ``Minimum``."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op

    def forward(self, *xs):
        y = xs[0]
        if self.op == "subtract":
            return xs[0] - xs[1]
        for x in xs[1:]:
            if self.op in ("add", "average"):
                y = y + x
            elif self.op == "multiply":
                y = y * x
            elif self.op == "maximum":
                y = torch.maximum(y, x)
            else:
                y = torch.minimum(y, x)
        return y / len(xs) if self.op == "average" else y

    def extra_repr(self):
        return self.op


class Concatenate(nn.Module):
    """Keras ``Concatenate(axis)``; ``dim`` is the torch (NCHW) dimension."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)

    def forward(self, *xs):
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class ConcatAdd(nn.Module):
    """``concat(x_1, ..., x_{n-1} + y)`` on the channels, inputs ``(x_1, ..., x_n, y)``: MeliusNet's
    improvement merge (:mod:`onebit.convert.larq.lambdas`), ``y`` added to the last input of a
    concatenation. Its two steps are the child modules ``add`` and ``cat``, which the converter
    traces as the graph's add and concat."""

    def __init__(self):
        super().__init__()
        self.add = Merge("add")
        self.cat = Concatenate(1)

    def forward(self, *xs):
        *parts, last, y = xs
        return self.cat(*parts, self.add(last, y))


class FullPReLU(nn.Module):
    """Keras ``PReLU`` with one slope per element (no shared axes): ``alpha`` is stored NCHW."""

    def __init__(self, alpha):
        super().__init__()
        self.alpha = nn.Parameter(torch.as_tensor(alpha, dtype=torch.float32))

    def forward(self, x):
        return torch.where(x >= 0, x, self.alpha * x)


class HardSigmoid(nn.Module):
    """Keras 2 ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``."""

    def forward(self, x):
        return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class KerasGraph(nn.Module):
    """An imported Keras model: its layers (``layers[name]``) executed in the Keras graph's
    topological order. Input and output are NCHW for images (NC for vectors).

    ``nodes`` lists ``(layer key, input keys)``; the input's key is ``input_key``.
    ``keras_input_shape`` is the Keras input shape (H, W, C) without the batch.
    """

    def __init__(self, layers: dict, nodes: list, input_key: str, output_key: str, keras_input_shape,
                 keras_names: dict | None = None):
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.nodes = [(str(k), [str(i) for i in ins]) for k, ins in nodes]
        self.input_key, self.output_key = str(input_key), str(output_key)
        self.keras_input_shape = tuple(int(v) for v in keras_input_shape)
        self.keras_names = dict(keras_names or {})

    def forward(self, x):
        values = {self.input_key: x}
        for key, ins in self.nodes:
            values[key] = self.layers[key](*[values[i] for i in ins])
        return values[self.output_key]

    def forward_nhwc(self, x):
        """Forward from a Keras-layout NHWC batch (returns what :meth:`forward` returns)."""
        return self(x.permute(0, 3, 1, 2) if x.dim() == 4 else x)
