"""ClipBlock: the BNN-Clip clipping block (Vorabbi et al. 2023).

Bounds a real-valued tensor to [-c, c] and fake-quantizes it onto the symmetric int8 grid with
one per-tensor scale, so the data between layers is exactly representable in 8 bits:

    s = c / qmax,   qmax = 2^(bits-1) - 1  (127 for bits=8)
    q = clamp(round(x / s), -qmax, qmax)    (round half to even, torch.round)
    y = q * s

Gradient (straight-through): dy/dx = 1 for |x| <= c, 0 outside. With ``learnable=True`` the clip
value c is a parameter trained PACT-style (Choi et al. 2018): dy/dc = sign(x) for |x| > c, 0 inside.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ClipBlock"]

_MIN_CLIP = 1e-4  # a learnable clip is kept positive so the scale never vanishes


class _ClipQuantFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, clip, qmax):
        s = clip / qmax
        q = torch.clamp(torch.round(x / s), -qmax, qmax)
        ctx.save_for_backward(x, clip)
        return q * s

    @staticmethod
    def backward(ctx, grad):
        x, clip = ctx.saved_tensors
        inside = x.abs() <= clip
        gx = grad * inside.to(grad.dtype)
        gc = None
        if ctx.needs_input_grad[1]:
            gc = (grad * torch.sign(x) * (~inside).to(grad.dtype)).sum().reshape(clip.shape)
        return gx, gc, None


class ClipBlock(nn.Module):
    """Clip to [-clip, clip] and round onto the int8 grid ``q * scale``, ``scale = clip / 127``.

    Args:
        clip: initial clip value c > 0.
        bits: bit width of the grid (8 for BNN-Clip; 2..16 accepted), recorded as ``bits``.
        learnable: train c as a parameter ``clip`` (PACT-like gradient); the current value is
            read with :attr:`clip_value` and :attr:`scale` (floats).
    """

    def __init__(self, clip: float = 1.0, bits: int = 8, learnable: bool = False):
        super().__init__()
        clip = float(clip)
        if not clip > 0:
            raise ValueError(f"ClipBlock clip must be > 0, got {clip}")
        if not isinstance(bits, int) or not 2 <= bits <= 16:
            raise ValueError(f"ClipBlock bits must be an int in [2, 16], got {bits!r}")
        self.bits = bits
        self.precision = bits
        self.qmax = 2 ** (bits - 1) - 1
        self.learnable = bool(learnable)
        if self.learnable:
            self.clip = nn.Parameter(torch.tensor(clip))
        else:
            self.register_buffer("clip", torch.tensor(clip))

    def _clip_tensor(self) -> torch.Tensor:
        if self.learnable:
            return self.clip.clamp_min(_MIN_CLIP)
        return self.clip

    @property
    def clip_value(self) -> float:
        """Current clip value c (float)."""
        return float(self._clip_tensor().detach())

    @property
    def scale(self) -> float:
        """Current per-tensor scale s = c / qmax (float); outputs are integers times s."""
        return float(self._clip_tensor().detach().to(torch.float32) / self.qmax)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self._clip_tensor().to(dtype=x.dtype, device=x.device)
        return _ClipQuantFn.apply(x, c, self.qmax)

    def extra_repr(self) -> str:
        return f"clip={self.clip_value:.4g}, bits={self.bits}, learnable={self.learnable}"
