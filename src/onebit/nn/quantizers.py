"""Quantizers: forward maps and their straight-through gradients.

Each quantizer is one function, one ``nn.Module`` class and one string alias, resolved by
:func:`get` (the larq pattern). Every one carries ``precision`` (bits of its output), metadata
that :func:`onebit.summary` reads instead of guessing.

==============  =====================================  ==========================================
alias           forward                                backward (dy -> dx)
==============  =====================================  ==========================================
``ste_sign``    sign(x): +1 for x >= 0, -1 for x < 0   dy * 1{|x| <= 1}   (clipped STE,
                (never 0, docs/format.md §1)           Courbariaux et al. 2016, BinaryNet)
``approx_sign`` sign(x)                                dy * (2 - 2|x|) * 1{|x| < 1}: the
                                                       derivative of the piecewise quadratic
                                                       2x+x^2 / 2x-x^2 (Bi-Real Net, Liu et al.
                                                       2018): 2+2x on [-1,0), 2-2x on [0,1)
``identity``    x                                      dy
==============  =====================================  ==========================================
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "ste_sign",
    "approx_sign",
    "identity",
    "SteSign",
    "ApproxSign",
    "Identity",
    "get",
    "precision_of",
    "QUANTIZERS",
]


def _sign(x: torch.Tensor) -> torch.Tensor:
    # torch.sign(0) == 0; the contract needs +1 there (docs/format.md §1)
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class _SteSignFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, clip_value):
        ctx.save_for_backward(x)
        ctx.clip_value = clip_value
        return _sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.clip_value).to(grad.dtype), None


class _ApproxSignFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # d/dx of the Bi-Real polynomial: 2 - 2|x| inside (-1, 1), 0 outside
        return grad * torch.clamp(2.0 - 2.0 * x.abs(), min=0.0)


def ste_sign(x: torch.Tensor, clip_value: float = 1.0) -> torch.Tensor:
    """sign(x) in {-1, +1} (sign(0) = +1); gradient ``dy * 1{|x| <= clip_value}`` (clipped STE)."""
    return _SteSignFn.apply(x, float(clip_value))


def approx_sign(x: torch.Tensor) -> torch.Tensor:
    """sign(x) in {-1, +1}; gradient ``dy * max(0, 2 - 2|x|)`` (Bi-Real Net ApproxSign)."""
    return _ApproxSignFn.apply(x)


def identity(x: torch.Tensor) -> torch.Tensor:
    """No quantization (full precision): returns ``x``."""
    return x


ste_sign.precision = 1
approx_sign.precision = 1
identity.precision = 32


class SteSign(nn.Module):
    """Module form of :func:`ste_sign` (alias ``"ste_sign"``)."""

    precision = 1

    def __init__(self, clip_value: float = 1.0):
        super().__init__()
        if not clip_value > 0:
            raise ValueError(f"SteSign clip_value must be > 0, got {clip_value}")
        self.clip_value = float(clip_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ste_sign(x, self.clip_value)

    def extra_repr(self) -> str:
        return f"clip_value={self.clip_value}"


class ApproxSign(nn.Module):
    """Module form of :func:`approx_sign` (alias ``"approx_sign"``)."""

    precision = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return approx_sign(x)


class Identity(nn.Module):
    """Module form of :func:`identity` (alias ``"identity"``)."""

    precision = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


QUANTIZERS: dict[str, type[nn.Module]] = {
    "ste_sign": SteSign,
    "approx_sign": ApproxSign,
    "identity": Identity,
}


def get(quantizer: str | Callable | None) -> Callable:
    """Resolve a quantizer: a registered alias, ``None`` (= identity), or a callable (as is).

    Returns a module instance for aliases (so it shows in ``repr`` and carries ``precision``).
    Raises ``ValueError`` naming the known aliases for an unknown string.
    """
    if quantizer is None:
        return Identity()
    if isinstance(quantizer, str):
        try:
            return QUANTIZERS[quantizer]()
        except KeyError:
            known = ", ".join(sorted(QUANTIZERS))
            raise ValueError(f"unknown quantizer {quantizer!r}; known: {known}") from None
    if callable(quantizer):
        return quantizer
    raise TypeError(f"quantizer must be a name, a callable or None, got {type(quantizer).__name__}")


def precision_of(quantizer: Callable) -> int:
    """Bit width of a quantizer's output (its ``precision``; 32 when it declares none)."""
    return int(getattr(quantizer, "precision", 32))
