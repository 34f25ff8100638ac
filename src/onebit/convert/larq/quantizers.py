"""Larq quantizers -> onebit quantizer modules (same forward, Larq's gradient).

A Larq quantizer appears in a layer config as a string alias (``"ste_sign"``) or as a
serialized object (``{"class_name": "SteSign", "config": {"clip_value": 1.25}}``).
:func:`resolve` names what it is; the forward maps are Larq's:

===========================  =========================================================
Larq                         forward (onebit module)
===========================  =========================================================
``ste_sign``                 sign, +1 at 0 (:class:`onebit.nn.quantizers.SteSign`)
``approx_sign``              sign (:class:`onebit.nn.quantizers.ApproxSign`)
``swish_sign``               sign (:class:`SwishSign`, gradient of 2 sigmoid(bx)(1 + bx(1 - sigmoid(bx))) - 1)
``magnitude_aware_sign``     sign times the per-output-channel mean of |w| (weights only:
                             ``BinaryConv2d(scale="channel")``)
``xnor_weight_scale``        (Larq Zoo's XNOR-Net) the same with the weights clipped to [-1, 1]
                             first: ``BinaryConv2d(scale="channel")`` with latent clipping
``ste_heaviside``            1 for x > 0, else 0 (:class:`SteHeaviside`)
``NoOp``                     x (identity)
===========================  =========================================================

``SteTern`` (ternary with a data-dependent threshold) and ``DoReFa`` (k-bit uniform levels) are
not sign quantizers: their layers have no exact onebit equivalent and are refused by name.
"""
from __future__ import annotations

import torch
from torch import nn

from onebit.convert.larq.h5file import LarqImportError
from onebit.nn.quantizers import _sign  # sign with +1 at 0 (docs/format.md §1)

__all__ = ["SwishSign", "SteHeaviside", "resolve"]


class _SwishSignFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return _sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        b = ctx.beta
        bx = b * x
        return grad * b * (2 - bx * torch.tanh(bx / 2)) / (1 + torch.cosh(bx)), None


class SwishSign(nn.Module):
    """sign(x) (+1 at 0) with the SwishSign gradient of BNN+ (Darabi et al. 2018), Larq's ``swish_sign``."""

    precision = 1

    def __init__(self, beta: float = 5.0):
        super().__init__()
        self.beta = float(beta)

    def forward(self, x):
        return _SwishSignFn.apply(x, self.beta)

    def extra_repr(self):
        return f"beta={self.beta}"


class _HeavisideFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, clip_value):
        ctx.save_for_backward(x)
        ctx.clip_value = clip_value
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.clip_value).to(grad.dtype), None


class SteHeaviside(nn.Module):
    """Larq's ``ste_heaviside``: 1 for x > 0, 0 for x <= 0; clipped straight-through gradient.

    Its two levels are {0, 1}, not the {-1, +1} code of onebit's bit layout, so it declares
    ``precision = 2`` (two levels the engine cannot store as one sign bit): the converter, which
    reads 1-bit quantizers as sign, refuses it instead of exporting a different model.
    """

    precision = 2

    def __init__(self, clip_value: float = 1.0):
        super().__init__()
        self.clip_value = float(clip_value)

    def forward(self, x):
        return _HeavisideFn.apply(x, self.clip_value)

    def extra_repr(self):
        return f"clip_value={self.clip_value}"


_ALIASES = {
    "stesign": "ste_sign", "approxsign": "approx_sign", "swishsign": "swish_sign",
    "magnitudeawaresign": "magnitude_aware_sign", "xnorweightscale": "xnor_weight_scale",
    "steheaviside": "ste_heaviside", "noop": "noop", "noopquantizer": "noop",
    "stetern": "ste_tern", "dorefa": "dorefa", "dorefaquantizer": "dorefa",
}


def resolve(spec, layer: str, role: str) -> tuple[str, dict]:
    """``(kind, params)`` of a serialized Larq quantizer; kind ``None`` for no quantizer.

    Raises :class:`LarqImportError` naming the layer and the quantizer when it is unknown or has
    no exact onebit equivalent.
    """
    if spec is None:
        return None, {}
    if isinstance(spec, str):
        name, cfg = spec, {}
    elif isinstance(spec, dict) and spec.get("class_name") == "function" and isinstance(spec.get("config"), str):
        name, cfg = spec["config"], {}  # a registered function (e.g. Larq Zoo's xnor_weight_scale)
    elif isinstance(spec, dict) and "class_name" in spec and isinstance(spec.get("config") or {}, dict):
        name, cfg = str(spec["class_name"]), dict(spec.get("config") or {})
    else:
        raise LarqImportError(f"layer {layer!r}: {role} {spec!r} is not a quantizer name or object")
    key = name.split(">")[-1].split(".")[-1].replace("_", "").lower()
    kind = _ALIASES.get(key)
    if kind is None:
        raise LarqImportError(f"layer {layer!r}: unknown {role} {name!r} (supported: ste_sign, approx_sign, "
                              f"swish_sign, magnitude_aware_sign, ste_heaviside, NoOp)")
    if kind in ("ste_tern", "dorefa"):
        what = ("ternary {-t, 0, +t} with a data-dependent threshold" if kind == "ste_tern"
                else f"{cfg.get('k_bit', 2)}-bit uniform levels")
        raise LarqImportError(f"layer {layer!r}: {role} {name!r} ({what}) has no exact onebit equivalent "
                              f"(onebit's binary layers use sign quantizers)")
    return kind, cfg


def module_for(kind: str | None, cfg: dict) -> nn.Module:
    """The onebit module computing a resolved quantizer's forward (not magnitude_aware_sign's scale)."""
    from onebit.nn.quantizers import ApproxSign, Identity, SteSign

    clip = float(cfg.get("clip_value", 1.0) or 1.0)
    if kind in (None, "noop"):
        return Identity()
    if kind in ("ste_sign", "magnitude_aware_sign", "xnor_weight_scale"):
        return SteSign(clip)
    if kind == "approx_sign":
        return ApproxSign()
    if kind == "swish_sign":
        return SwishSign(float(cfg.get("beta", 5.0)))
    if kind == "ste_heaviside":
        return SteHeaviside(clip)
    raise LarqImportError(f"quantizer {kind!r} has no module")  # pragma: no cover - resolve() filters
