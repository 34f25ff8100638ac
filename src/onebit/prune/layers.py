"""Which layers are prunable and how their ternary masks are stored.

A pruned binary weight is the third state 0: the layer's effective weight is
``sign(w) * weight_mask`` with ``weight_mask`` a 0/1 float buffer of the latent weight's shape
(see ``onebit.nn``). Only binary layers are pruned: the float first layer and the float
classifier stay dense, as in the BNN pruning literature.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from onebit.errors import OnebitError


class PruneError(OnebitError, ValueError):
    """Bad pruning request (unknown method, unreachable target, unsupported structure...)."""


def _binary_types() -> tuple[type, ...]:
    try:
        from onebit.nn import BinaryConv2d, BinaryLinear
    except ImportError:  # layers not importable: fall back to the buffer protocol below
        return ()
    return (BinaryConv2d, BinaryLinear)


def is_binary_layer(module: nn.Module) -> bool:
    """True for ``onebit.nn.BinaryConv2d/BinaryLinear`` (or a Conv2d/Linear declaring a
    ``weight_mask`` buffer, the layer protocol pruning relies on)."""
    types = _binary_types()
    if types and isinstance(module, types):
        return True
    return isinstance(module, (nn.Conv2d, nn.Linear)) and "weight_mask" in module._buffers


def binary_layers(model: nn.Module, exclude: Iterable[str] = ()) -> list[tuple[str, nn.Module]]:
    """``(qualified name, layer)`` of every binary layer, in registration order."""
    excluded = set(exclude)
    layers = [(n, m) for n, m in model.named_modules() if is_binary_layer(m) and n not in excluded]
    return layers


def get_mask(layer: nn.Module) -> torch.Tensor:
    """The layer's 0/1 mask (all ones when the layer is unpruned)."""
    mask = getattr(layer, "weight_mask", None)
    if mask is None:
        return torch.ones_like(layer.weight, dtype=layer.weight.dtype)
    return mask


def set_mask(layer: nn.Module, mask: torch.Tensor | None) -> None:
    """Store ``mask`` (any 0/1 or bool tensor of the weight's shape) as the layer's
    ``weight_mask`` buffer; ``None`` removes it (dense layer)."""
    if mask is None:
        if "weight_mask" in layer._buffers:
            layer._buffers["weight_mask"] = None
        return
    if tuple(mask.shape) != tuple(layer.weight.shape):
        raise PruneError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(layer.weight.shape)}")
    m = (mask != 0).to(dtype=layer.weight.dtype, device=layer.weight.device)
    if "weight_mask" in layer._buffers:
        layer._buffers["weight_mask"] = m
    else:
        layer.register_buffer("weight_mask", m)


def zero_pruned_latents(layer: nn.Module) -> None:
    """Set the latent weights under the mask to exactly 0 (their sign no longer matters; a
    fixed 0 keeps them from drifting and from registering as flips)."""
    mask = getattr(layer, "weight_mask", None)
    if mask is not None:
        with torch.no_grad():
            stale = (mask == 0) & (layer.weight != 0)
            # write only when something drifted: an in-place write bumps the parameter's
            # version and would break a pending backward through an earlier forward
            if bool(stale.any()):
                layer.weight.masked_fill_(stale, 0.0)


def ensure_mask_buffers(model: nn.Module, state_dict: dict) -> None:
    """Give every layer whose ``weight_mask`` appears in ``state_dict`` a placeholder mask so that
    a strict ``load_state_dict`` of a pruned model's state works on a freshly built model."""
    modules = dict(model.named_modules())
    for key, value in state_dict.items():
        if not key.endswith("weight_mask"):
            continue
        name = key[: -len("weight_mask")].rstrip(".")
        layer = modules.get(name)
        if layer is None or not hasattr(layer, "weight"):
            continue
        if getattr(layer, "weight_mask", None) is None:
            if tuple(value.shape) != tuple(layer.weight.shape):
                raise PruneError(
                    f"{key}: mask shape {tuple(value.shape)} does not match the weight "
                    f"{tuple(layer.weight.shape)}; was the model shrunk? load it with onebit.prune.load_checkpoint"
                )
            set_mask(layer, torch.ones_like(layer.weight))
