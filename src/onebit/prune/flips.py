"""Weight-flip counting during training (Li & Ren, "BNN Pruning: Pruning Binary Neural Network
Guided by Weight Flipping Frequency", ISQED 2020).

A flip is a change of ``sign(latent)`` (sign(0) = +1, as everywhere in onebit) between two
consecutive observations; call :meth:`FlipCounter.update` after every optimizer step of the
counting interval. Weights that flip often during the interval are *insensitive*: training
does not settle their sign, so the loss does not depend on it. A filter's importance is the
fraction of its weights that are *not* insensitive; the study removes the filters with the
largest fraction of insensitive weights, and prunes each layer in proportion to its fraction
of insensitive weights.
"""
from __future__ import annotations

import torch
from torch import nn

from onebit.prune.layers import binary_layers


def _sign_bits(w: torch.Tensor) -> torch.Tensor:
    return w.detach() < 0  # True = -1, matching bit 1 = -1 of docs/format.md; sign(0) = +1


class FlipCounter:
    """Counts per-weight sign flips of the latent weights of every binary layer.

    ``counter = FlipCounter(model)``; after each ``optimizer.step()`` call ``counter.update()``
    (or ``counter.attach(optimizer)`` to do it from the optimizer's step hook). ``counts`` maps
    layer name -> int32 tensor of the weight's shape; ``steps`` is the number of updates.
    """

    def __init__(self, model: nn.Module, layers: list[str] | None = None):
        self.model = model
        named = dict(binary_layers(model))
        if layers is not None:
            missing = [n for n in layers if n not in named]
            if missing:
                raise KeyError(f"not binary layers of the model: {missing}")
            named = {n: named[n] for n in layers}
        self._layers = named
        self.counts: dict[str, torch.Tensor] = {}
        self._prev: dict[str, torch.Tensor] = {}
        self.steps = 0
        self._hook = None
        self.reset()

    def reset(self) -> None:
        """Start a new counting interval from the current signs."""
        self.counts = {n: torch.zeros(m.weight.shape, dtype=torch.int32) for n, m in self._layers.items()}
        self._prev = {n: _sign_bits(m.weight).cpu() for n, m in self._layers.items()}
        self.steps = 0

    @torch.no_grad()
    def update(self) -> None:
        """Observe the current signs and count the weights whose sign changed."""
        for n, m in self._layers.items():
            now = _sign_bits(m.weight).cpu()
            if now.shape != self._prev[n].shape:
                raise RuntimeError(f"layer {n!r} changed shape while counting flips")
            self.counts[n] += (now != self._prev[n]).to(torch.int32)
            self._prev[n] = now
        self.steps += 1

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Call :meth:`update` after every ``optimizer.step()``."""
        self.detach()
        self._hook = optimizer.register_step_post_hook(lambda *_: self.update())

    def detach(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def insensitive(self, name: str, threshold: int = 0) -> torch.Tensor:
        """Bool tensor: weights of ``name`` that flipped more than ``threshold`` times."""
        return self.counts[name] > threshold

    def insensitive_fraction(self, threshold: int = 0) -> dict[str, float]:
        """Per layer: fraction of insensitive weights (the study's per-layer pruning ratio)."""
        return {n: float(self.insensitive(n, threshold).float().mean()) for n in self.counts}

    def state_dict(self) -> dict:
        return {"steps": self.steps, "counts": {n: c.clone() for n, c in self.counts.items()},
                "prev": {n: p.clone() for n, p in self._prev.items()}}

    def load_state_dict(self, state: dict) -> None:
        unknown = set(state["counts"]) - set(self._layers)
        if unknown:
            raise KeyError(f"flip counts for unknown layers: {sorted(unknown)}")
        self.steps = int(state["steps"])
        for n in state["counts"]:
            self.counts[n] = state["counts"][n].clone().to(torch.int32)
            self._prev[n] = state["prev"][n].clone().bool()
