"""Ratio allocation: per-layer pruning ratios -> masks -> exact binary-op reduction, and the
solver that finds ratios meeting a binary-op target.

Per-layer ratios (the fraction of a layer's groups pruned) come from explicit ``ratios`` (e.g.
from :func:`onebit.prune.sensitivity.allocate`) or from an ``allocation`` rule solved by
bisection so that the exact binary-op count meets ``target``:
``uniform`` (same ratio everywhere), ``global`` (one score threshold across layers) or ``flip``
(ratio proportional to each layer's fraction of insensitive weights, Li & Ren 2020; when
that alone cannot reach the target because some layers have no insensitive weights, a uniform
floor on all layers rises until it does). The ``flip`` allocation does not depend on
``flip_order``.

Channel multiple (``granularity="channel"``, ``channel_multiple=m``, e.g. 64). The engine packs
input channels into 64-bit words, so removing channels only removes work in the next layer when
whole words go. With ``m > 1`` every pruned layer keeps a multiple of ``m`` output channels, or
all of them:

- a layer asked (by its ratio) to keep ``c`` channels keeps the multiple of ``m`` nearest ``c``
  (a tie keeps more), at least ``m`` and at least what ``max_ratio`` allows
  (:func:`onebit.prune.granularity.aligned_count`); a layer with ``m`` or fewer channels (or
  where no multiple fits ``max_ratio``) is left unpruned. This holds for every path: explicit
  ``ratios`` (e.g. from the sensitivity allocator, whose ``reduction_fn`` counts the rounded
  plans), the bisection rules and the gradual schedule; masks still only grow.
- With a ``target``, the bisection runs on the rounded plans, so it finds the first plan along
  the allocation's path with reduction >= target; as rounding moves whole multiples at once,
  that plan can overshoot. Then, once per layer, :meth:`Allocator.give_back` keeps ``m`` more
  channels where the target stays met, each time the step leaving the least overshoot; so the
  achieved reduction is >= target and every layer stays within about one multiple of the
  allocation's rounded count. If no aligned plan reaches the target a ``PruneError`` says the
  most that is reachable.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from onebit.prune import granularity as gran
from onebit.prune.layers import PruneError

ALLOCATIONS = ("uniform", "global", "flip")


class Ranking(NamedTuple):
    order: dict[str, torch.Tensor]  # per layer: group indices, first pruned first
    dead: dict[str, int]            # per layer: groups already fully pruned (they sort first)


class Allocator:
    """The pruned model's structure, frozen at ``Pruner.prepare()``: which layers are pruned and
    how their weights group, the masks they started with, their binary ops per weight.

    ``layers``: name -> (group index tensor, group count) of the prunable layers; ``initial_masks``:
    name -> mask of every binary layer; ``positions``: name -> output positions (binary ops per
    live weight); ``flow``: the dataflow graph (channel granularity: the consumer layers whose
    inputs die with a pruned channel).
    """

    def __init__(self, layers: dict, initial_masks: dict, positions: dict, base_bops: int, *,
                 granularity: str, max_ratio: float, channel_multiple: int = 1, flow=None):
        self.groups = layers
        self.initial_masks = initial_masks
        self.positions = positions
        self.base_bops = base_bops
        self.granularity = granularity
        self.max_ratio = max_ratio
        self.channel_multiple = channel_multiple
        self.flow = flow

    # ------------------------------------------------------------------ ratios -> masks
    def masks(self, ratios: dict[str, float], orders: Ranking) -> dict[str, torch.Tensor]:
        """Every binary layer's mask when the prunable layers are pruned at ``ratios``."""
        masks = {n: m.clone().cpu() for n, m in self.initial_masks.items()}
        for name, (idx, n) in self.groups.items():
            k = self.pruned_count(name, ratios.get(name, 0.0), orders.dead[name])
            keep = torch.ones(n, dtype=torch.float32)
            keep[orders.order[name][:k]] = 0.0
            masks[name] = masks[name] * gran.expand_keep(keep, idx)
            if self.granularity == "channel" and k > 0:
                self._kill_consumer_inputs(name, keep, masks)
        return masks

    def pruned_count(self, name: str, ratio: float, dead: int) -> int:
        """Groups of layer ``name`` pruned at ``ratio`` (``dead`` of them already are)."""
        n = self.groups[name][1]
        k = int(round(min(float(ratio), self.max_ratio) * n))
        if self.granularity == "channel":
            k = min(k, n - 1)  # a layer keeps at least one channel
            if self.channel_multiple > 1:
                k = n - self.aligned_keep(name, n - k, dead)
        return k

    def aligned_keep(self, name: str, want: int, dead: int = 0) -> int:
        """Kept channels of layer ``name`` under ``channel_multiple`` when its ratio asks to keep
        ``want`` and ``dead`` channels are already pruned (see the module docstring)."""
        n = self.groups[name][1]
        lo = n - min(int(round(self.max_ratio * n)), n - 1)
        return gran.aligned_count(n, want, self.channel_multiple, lo=lo, hi=n - dead)

    def _kill_consumer_inputs(self, name: str, keep: torch.Tensor, masks: dict) -> None:
        chain = self.flow.chains[name]
        consumer = chain.consumer
        if consumer not in masks:
            return  # float consumer: dead channels fold into its bias at shrink time
        dead = (keep == 0).nonzero().flatten()
        m = masks[consumer]
        if chain.flatten is not None:
            _, hw = chain.flatten
            cols = (dead.view(-1, 1) * hw + torch.arange(hw).view(1, -1)).flatten()
            m[:, cols] = 0.0
        else:
            m[:, dead] = 0.0

    def reduction(self, masks: dict[str, torch.Tensor]) -> float:
        """Exact fraction of binary ops removed by ``masks``."""
        bops = sum(self.positions[n] * int(m.count_nonzero()) for n, m in masks.items() if n in self.positions)
        return 1.0 - bops / self.base_bops

    def achieved_ratios(self, masks) -> dict[str, float]:
        """Per prunable layer: the fraction of its groups that ``masks`` prune entirely."""
        out = {}
        for name, (idx, n) in self.groups.items():
            alive = gran.group_mean(masks[name], idx, n)
            out[name] = float((alive == 0).double().mean())
        return out

    # ------------------------------------------------------------------ target -> ratios
    def ratio_rule(self, allocation: str, scores, flip_counter=None, flip_threshold: int = 0):
        """Map a scalar s to per-layer ratios, monotone in s; returns (rule, s_max)."""
        names = list(self.groups)
        if allocation == "uniform":
            return (lambda s: {n: min(s, self.max_ratio) for n in names}), self.max_ratio
        if allocation == "flip":
            if flip_counter is None or flip_counter.steps == 0:
                raise PruneError("allocation 'flip' needs flip counts (a FlipCounter with steps)")
            frac = {n: float(flip_counter.insensitive(n, flip_threshold).float().mean()) for n in names}
            top = max(frac.values())
            if top == 0.0:  # nothing flipped: no evidence to allocate by, fall back to uniform
                return (lambda s: {n: min(s, self.max_ratio) for n in names}), self.max_ratio
            rel = {n: f / top for n, f in frac.items()}
            u_max = self.max_ratio / min(v for v in rel.values() if v > 0)

            def rule(s):
                # s in [0, 1]: ratios proportional to the insensitive fractions (Li & Ren);
                # s in (1, 2]: if that cannot meet the target, a uniform floor rises as well
                prop = {n: min(min(s, 1.0) * u_max * rel[n], self.max_ratio) for n in names}
                floor = max(0.0, s - 1.0) * self.max_ratio
                return {n: max(v, floor) for n, v in prop.items()}

            return rule, 2.0
        # global: one threshold on group scores across layers
        finite = torch.cat([s[torch.isfinite(s)] for s in scores.values()])
        lo, hi = float(finite.min()), float(finite.max())

        def rule(s):
            thr = lo + s * (hi - lo) + 1e-12
            return {n: min(float((scores[n] < thr).double().mean()), self.max_ratio) for n in names}

        return rule, 1.0

    def solve(self, target: float, rule, s_max: float, orders: Ranking, current: dict[str, float],
              allocation: str = "") -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        """(ratios, masks) of the first plan along ``rule`` whose reduction is >= ``target``
        (bisection on s in [0, s_max]; ``current``: the ratios already achieved, kept at target 0)."""
        if target == 0.0:
            ratios = {n: current.get(n, 0.0) for n in self.groups}
            return ratios, self.masks(ratios, orders)
        top = self.masks(rule(s_max), orders)
        if self.reduction(top) < target - 1e-12:
            aligned = f" and channel_multiple {self.channel_multiple}" if self.channel_multiple > 1 else ""
            raise PruneError(
                f"target {target:.0%} fewer binary ops is unreachable: at most "
                f"{self.reduction(top):.1%} with allocation {allocation!r}, max_ratio {self.max_ratio}{aligned}")
        lo, hi = 0.0, s_max
        for _ in range(50):
            mid = (lo + hi) / 2
            if self.reduction(self.masks(rule(mid), orders)) >= target - 1e-12:
                hi = mid
            else:
                lo = mid
        ratios = rule(hi)
        if self.channel_multiple > 1:
            ratios = self.give_back(ratios, target, orders)
        return ratios, self.masks(ratios, orders)

    def give_back(self, ratios: dict[str, float], target: float, orders: Ranking) -> dict[str, float]:
        """Channel multiple: from the bisected plan, keep one more multiple in a layer where the
        target stays met (each layer at most once), each time the step leaving the least
        overshoot. Returns ratios that reproduce the kept counts exactly."""
        dead = orders.dead
        kept = {name: n - self.pruned_count(name, ratios.get(name, 0.0), dead[name])
                for name, (_, n) in self.groups.items()}
        as_ratios = lambda kp: {n: (self.groups[n][1] - c) / self.groups[n][1] for n, c in kp.items()}  # noqa: E731
        todo = set(self.groups)
        while todo:
            best = None
            for name in sorted(todo):
                more = self.aligned_keep(name, kept[name] + self.channel_multiple, dead[name])
                if more <= kept[name]:
                    continue
                red = self.reduction(self.masks(as_ratios({**kept, name: more}), orders))
                if red >= target - 1e-12 and (best is None or red < best[0]):
                    best = (red, name, more)
            if best is None:
                break
            kept[best[1]] = best[2]
            todo.discard(best[1])
        return as_ratios(kept)
