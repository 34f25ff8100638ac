"""Optimizer construction with parameter groups.

Latent weights of binary layers get no weight decay: decay pulls them towards 0, where the
sign flips on the smallest gradient noise (Bi-Real Net, Liu et al. 2018; Helwegen et al. 2019);
only their sign matters, and they are kept in [-1, 1] by clipping instead. BatchNorm
parameters and biases get none either (standard practice); other float weights (first and
last layer) get ``weight_decay``.
"""
from __future__ import annotations

import torch


def binary_layer_types() -> tuple[type, ...]:
    import onebit.nn as onn

    return tuple(t for t in (getattr(onn, "BinaryConv2d", None), getattr(onn, "BinaryLinear", None)) if t)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    binary_types = binary_layer_types()
    latent, no_decay, decay = [], [], []
    seen: set[int] = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if isinstance(module, binary_types) and name == "weight":
                latent.append(p)
            elif p.ndim <= 1:
                no_decay.append(p)
            else:
                decay.append(p)
    groups = [
        {"params": latent, "weight_decay": 0.0, "name": "binary_latent"},
        {"params": no_decay, "weight_decay": 0.0, "name": "norm_bias"},
        {"params": decay, "weight_decay": float(weight_decay), "name": "float_weights"},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam on three groups; ``weight_decay`` is L2 (Adam's coupled form) on float weights only."""
    return torch.optim.Adam(param_groups(model, weight_decay), lr=lr)
