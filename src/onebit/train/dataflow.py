"""Measure the data width between the blocks of a trained network (the BNN-Clip claim).

For every top-level stage of a residual network (its ``stem`` and each block of ``body``)
the tensor it hands to the next block is recorded on real inputs and classified:

- ``bits = b`` when every value lies exactly on the grid ``q * s`` with integer
  ``|q| <= 2**(b-1) - 1``, where ``s`` is the scale of the block's output ClipBlock
  (BNN-Clip, Vorabbi et al.): the tensor is exactly representable in b-bit integers;
- ``bits = 32`` otherwise (a float tensor; ``distinct`` counts its distinct values).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from onebit.nn.hooks import eval_forward


def _output_clip(block: nn.Module):
    """The ClipBlock that produces the block's output (the last one registered), or None."""
    from onebit.nn import ClipBlock

    clips = [m for m in block.modules() if isinstance(m, ClipBlock)]
    return clips[-1] if clips else None


def on_grid(t: torch.Tensor, scale: float, qmax: int) -> bool:
    """True when t == q * scale with integer q, |q| <= qmax (up to float rounding of q*scale)."""
    q = torch.round(t / scale)
    return bool(q.abs().max() <= qmax) and bool(((t - q * scale).abs() <= 1e-4 * scale).all())


def stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if hasattr(model, "stem") and hasattr(model, "body"):
        return [("stem", model.stem)] + [(f"body.{n}", m) for n, m in model.body.named_children()]
    raise ValueError("block_data_widths expects a residual network with .stem and .body "
                     "(onebit.models.blocks.ResidualNet)")


@torch.no_grad()
def block_data_widths(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """One row per stage: name, bits (8 on the int8 grid, 32 float), distinct values, scale."""
    stages = stage_modules(model)
    outputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: outputs.__setitem__(name, out))
             for name, m in stages]
    eval_forward(model, x, hooks)
    rows = []
    for name, m in stages:
        t = outputs[name].detach().float()
        clip = _output_clip(m)
        bits = 32
        scale = None
        if clip is not None:
            scale = clip.scale
            if on_grid(t, scale, clip.qmax):
                bits = clip.bits
        rows.append({"stage": name, "bits": bits, "distinct": int(torch.unique(t).numel()),
                     "scale": scale, "shape": list(t.shape[1:])})
    return rows
