"""Helpers shared by the model families: width scaling, binary/float layer factory, finishing."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from onebit.nn import BinaryConv2d, BinaryLinear, ClipBlock

__all__ = ["ch", "Layers", "SequentialBuilder", "finish", "check_stem_unused", "resolve_size", "plain_builder"]

#: Clip value of the ClipBlock before a float classifier (BN output, roughly unit scale).
HEAD_CLIP = 4.0


def ch(c: int, width: float) -> int:
    """Channels ``c`` scaled by the width multiplier: ``max(1, round(c * width))``."""
    return max(1, int(round(c * width)))


class Layers:
    """Makes the binary layers of a model, or their float twins.

    Binary: ``BinaryConv2d``/``BinaryLinear`` without bias (a BatchNorm follows each) and no
    activation (the next binary layer binarizes its input). Float twin: ``nn.Conv2d``/
    ``nn.Linear`` without bias and ``nn.ReLU`` where the binary model applies sign.
    """

    def __init__(self, float_twin: bool, input_quantizer: str = "ste_sign"):
        self.float_twin = float_twin
        self.input_quantizer = input_quantizer

    def conv(self, cin, cout, k, stride=1, padding=0) -> nn.Module:
        if self.float_twin:
            return nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)
        return BinaryConv2d(cin, cout, k, stride=stride, padding=padding, bias=False,
                            input_quantizer=self.input_quantizer)

    def linear(self, cin, cout) -> nn.Module:
        if self.float_twin:
            return nn.Linear(cin, cout, bias=False)
        return BinaryLinear(cin, cout, bias=False, input_quantizer=self.input_quantizer)

    def act(self) -> nn.Module | None:
        """The float twin's nonlinearity in place of the binary model's sign (None if binary)."""
        return nn.ReLU() if self.float_twin else None


class SequentialBuilder:
    """Collects named layers for a flat ``nn.Sequential`` (names stay equal in the float twin)."""

    def __init__(self, layers: Layers):
        self.layers = layers
        self.items: list[tuple[str, nn.Module]] = []

    def add(self, name: str, module: nn.Module | None) -> None:
        if module is not None:
            self.items.append((name, module))

    def float_conv(self, name, cin, cout, k, stride=1, padding=0, pool=False) -> None:
        """First layer: float conv + BN (+ max pool after the BN)."""
        self.add(f"conv{name}", nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False))
        self.add(f"bn{name}", nn.BatchNorm2d(cout))
        if pool:
            self.add(f"pool{name}", nn.MaxPool2d(2))

    def binary_conv(self, name, cin, cout, k, stride=1, padding=0, pool=False) -> None:
        """[act (twin)] + binary conv + BN (+ 2x2 max pool after the BN: it commutes with sign)."""
        self.add(f"act{name}", self.layers.act())
        self.add(f"conv{name}", self.layers.conv(cin, cout, k, stride, padding))
        self.add(f"bn{name}", nn.BatchNorm2d(cout))
        if pool:
            self.add(f"pool{name}", nn.MaxPool2d(2))

    def binary_linear(self, name, cin, cout) -> None:
        self.add(f"act_fc{name}", self.layers.act())
        self.add(f"fc{name}", self.layers.linear(cin, cout))
        self.add(f"bn_fc{name}", nn.BatchNorm1d(cout))

    def classifier(self, cin, hidden: tuple[int, ...], num_classes, clip_block: bool) -> None:
        """Flatten, binary linear layers ``fc1``, ``fc2``, ... of widths ``hidden``, the head."""
        self.add("flatten", nn.Flatten())
        for i, cout in enumerate(hidden, 1):
            self.binary_linear(i, cin, cout)
            cin = cout
        self.head(cin, num_classes, clip_block)

    def head(self, cin, num_classes, clip_block: bool) -> None:
        """Float classifier; with BNN-Clip its real-valued input is clipped to int8 first."""
        if clip_block:
            self.add("clip_out", ClipBlock(HEAD_CLIP))
        self.add("fc", nn.Linear(cin, num_classes))

    def build(self) -> nn.Sequential:
        return nn.Sequential(OrderedDict(self.items))


def finish(model: nn.Module, *, dataset_hint: str, input_shape: tuple[int, int, int],
           stem: str | None = None) -> nn.Module:
    """Attach the metadata every zoo model carries (``onebit_config`` is set by ``create``)."""
    model.dataset_hint = dataset_hint
    model.input_shape = tuple(int(v) for v in input_shape)
    model.stem_type = stem
    return model


def check_stem_unused(name: str, stem) -> None:
    if stem is not None:
        raise ValueError(f"{name} has no stem option (got stem={stem!r}); only residual models do")


def resolve_size(name: str, input_size, default: int, minimum: int) -> int:
    size = default if input_size is None else int(input_size)
    if size < minimum:
        raise ValueError(f"{name} needs input_size >= {minimum}, got {size}")
    return size


def plain_builder(name: str, stem, input_size, default: int, minimum: int,
                  float_twin: bool) -> tuple[int, SequentialBuilder]:
    """A model without a stem option: its checked input size and an empty builder."""
    check_stem_unused(name, stem)
    return resolve_size(name, input_size, default, minimum), SequentialBuilder(Layers(float_twin))
