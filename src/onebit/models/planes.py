"""``input_bits``: a zoo model whose first layer reads the CBNN bit planes of its input.

``with_input_planes(model, input_bits)`` puts a :class:`onebit.nn.BitPlanes` layer (named
``planes``) in front of the float first convolution ``conv0`` and rebuilds that convolution with
one input channel per kept plane (real weights on +-1 planes, Li and Ren, arXiv 1802.00904).
Only flat models whose first layer is a float ``nn.Conv2d`` over the image can take planes.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from onebit.nn.layers import is_binary_layer
from onebit.nn.planes import BitPlanes

__all__ = ["with_input_planes", "input_planes_layer"]


def input_planes_layer(model: nn.Module) -> BitPlanes | None:
    """The model's ``BitPlanes`` input layer, or None."""
    first = next(iter(model.children()), None) if isinstance(model, nn.Sequential) else None
    return first if isinstance(first, BitPlanes) else None


def with_input_planes(model: nn.Module, input_bits, name: str) -> nn.Sequential:
    from onebit.data.registry import info

    items = list(model.named_children()) if isinstance(model, nn.Sequential) else []
    first_name, first = items[0] if items else (None, model)
    channels = int(model.input_shape[0])
    if (not items or not isinstance(first, nn.Conv2d) or is_binary_layer(first)
            or first.in_channels != channels or first.groups != 1):
        raise ValueError(f"model {name!r} cannot take input_bits: its input layer is "
                         f"{type(first).__name__}, not a float Conv2d over the {channels}-channel image "
                         f"of a flat (Sequential) model")
    ds = info(model.dataset_hint)
    planes = BitPlanes(input_bits, channels, ds.mean, ds.std)
    conv = nn.Conv2d(planes.out_channels, first.out_channels, first.kernel_size, stride=first.stride,
                     padding=first.padding, bias=first.bias is not None)
    new = nn.Sequential(OrderedDict([("planes", planes), (first_name, conv)] + items[1:]))
    for attr in ("dataset_hint", "input_shape", "stem_type"):
        setattr(new, attr, getattr(model, attr))
    return new
