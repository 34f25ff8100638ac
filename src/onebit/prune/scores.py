"""Per-weight importance scores (higher = keep). A group's score is the mean over its weights
(``onebit.prune.granularity.group_mean``); the lowest-scoring groups are pruned.

- ``latent``: ``|w|`` of the latent (real-valued) weight. A latent weight near 0 is one the
  optimizer could flip with a small step, i.e. one whose sign carries little evidence
  (latent-weight pruning with layer sensitivity, ASP-DAC 2023).
- ``flip``: ``1 - insensitive`` where a weight is insensitive when it flipped more than
  ``threshold`` times in the counting interval (Li & Ren, ISQED 2020). The group mean is the
  fraction of sensitive weights, so a filter's score is 1 - its fraction of insensitive
  weights. Ties (many groups have equal fractions) are broken by fewer flips, then by ``|w|``.
  ``order="rare"`` reverses the ranking (the *rarely* flipping weights go first: score =
  flipped-or-not, ties broken by more flips, then by ``|w|``), an ablation of the study's
  assumption that frequently flipping weights are the prunable ones.
- ``random``: i.i.d. uniform scores from a seeded generator (the baseline every table needs).
"""
from __future__ import annotations

import torch

from onebit.prune.layers import PruneError

METHODS = ("latent", "flip", "random")
FLIP_ORDERS = ("frequent", "rare")


def latent_score(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().abs().double().cpu()


def flip_score(weight: torch.Tensor, counts: torch.Tensor, threshold: int = 0,
               order: str = "frequent") -> torch.Tensor:
    """``order="frequent"``: weights that flipped more than ``threshold`` times are pruned
    first (Li & Ren); ``"rare"``: the weights that did not are pruned first."""
    if order not in FLIP_ORDERS:
        raise PruneError(f"unknown flip order {order!r}; choose one of {FLIP_ORDERS}")
    c = counts.double().cpu()
    flipped = (c > threshold).double()
    # tie-breakers stay below the 1/numel resolution of a group's (non-)flipping fraction
    scale = 1.0 / (weight.numel() + 1)
    magnitude = weight.detach().abs().double().cpu()
    if order == "rare":
        more_flips = c / (c.max() + 1.0)
        return flipped + scale * (more_flips + magnitude) / 2.0
    fewer_flips = 1.0 - c / (c.max() + 1.0)
    return (1.0 - flipped) + scale * (fewer_flips + magnitude) / 2.0


def random_score(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(weight.shape, generator=generator, dtype=torch.float64)


def score(method: str, weight: torch.Tensor, *, counts: torch.Tensor | None = None,
          threshold: int = 0, generator: torch.Generator | None = None,
          flip_order: str = "frequent") -> torch.Tensor:
    """Importance of every weight of one layer under ``method``."""
    if method == "latent":
        return latent_score(weight)
    if method == "flip":
        if counts is None:
            raise PruneError("method 'flip' needs flip counts: train with a FlipCounter first")
        return flip_score(weight, counts, threshold, flip_order)
    if method == "random":
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        return random_score(weight, generator)
    raise PruneError(f"unknown pruning method {method!r}; choose one of {METHODS}")
