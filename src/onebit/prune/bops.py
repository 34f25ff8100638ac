"""Binary-operation (bit-MAC) counting of binary layers, pruning-aware.

Convention (the same as ``onebit.summary``): one bit-MAC per live binary weight per output
position, batch 1. A conv layer with output ``H_out x W_out`` and mask ``m`` costs
``H_out * W_out * sum(m)`` bit-MACs (the dense count is ``H_out * W_out * Cout * Cin/g * kh * kw``),
a binary dense layer ``sum(m)``. Float layers (first conv, classifier) are not binary ops and
are never pruned. "40% fewer binary ops" means ``bops <= 0.6 * dense bops`` of the unpruned
model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from onebit.nn.hooks import eval_forward
from onebit.prune.layers import PruneError, binary_layers, get_mask


def input_size_of(model: nn.Module, input_size=None) -> tuple[int, int, int]:
    """``(C, H, W)`` of one input sample: ``input_size`` if given (``(C, H, W)``, or ``(H, W)`` /
    an int with C taken from the model), else the zoo model's ``input_shape``."""
    shape = getattr(model, "input_shape", None)
    if input_size is None:
        if shape is None:
            raise PruneError("cannot infer the model's input size: pass input_size=(C, H, W)")
        input_size = shape
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    input_size = tuple(int(v) for v in input_size)
    if len(input_size) == 2:
        if shape is None:
            raise PruneError(f"input_size {input_size} lacks the channel count: pass (C, H, W)")
        input_size = (int(shape[0]), *input_size)
    if len(input_size) != 3 or min(input_size) < 1:
        raise PruneError(f"input_size must be (C, H, W), got {input_size}")
    return input_size


def example_input(model: nn.Module, input_size=None) -> torch.Tensor:
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.zeros((1, *input_size_of(model, input_size)), device=device)


@torch.no_grad()
def layer_positions(model: nn.Module, input_size=None) -> dict[str, int]:
    """Output positions per binary layer (``H_out * W_out`` for conv, rows for dense), batch 1,
    found with forward hooks on a zero input in eval mode."""
    x = example_input(model, input_size)
    positions: dict[str, int] = {}
    hooks = []
    for name, layer in binary_layers(model):
        def hook(mod, inp, out, name=name):
            # one bit-MAC per live weight per output position: positions = numel / out channels
            positions[name] = int(out.numel() // mod.weight.shape[0])
        hooks.append(layer.register_forward_hook(hook))
    eval_forward(model, x, hooks)
    return positions


@dataclass
class BopsReport:
    """Per-layer ``{"positions", "weights", "live_weights", "dense_bops", "bops"}`` and totals."""

    layers: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def bops(self) -> int:
        return sum(v["bops"] for v in self.layers.values())

    @property
    def dense_bops(self) -> int:
        return sum(v["dense_bops"] for v in self.layers.values())

    def to_dict(self) -> dict:
        return {"layers": self.layers, "bops": self.bops, "dense_bops": self.dense_bops}


def count_bops(model: nn.Module, input_size=None, positions: dict[str, int] | None = None) -> BopsReport:
    """Count live binary ops of every binary layer (see module docstring for the convention)."""
    if positions is None:
        positions = layer_positions(model, input_size)
    report = BopsReport()
    for name, layer in binary_layers(model):
        if name not in positions:
            continue  # layer not on the forward path
        live = int(get_mask(layer).count_nonzero())
        n = layer.weight.numel()
        p = positions[name]
        report.layers[name] = {
            "positions": p,
            "weights": n,
            "live_weights": live,
            "dense_bops": p * n,
            "bops": p * live,
        }
    return report
