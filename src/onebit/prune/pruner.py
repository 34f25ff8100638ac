"""The pruner: an optimizer-like lifecycle over a model's binary layers.

::

    pruner = Pruner(model, method="latent", granularity="channel", target=0.4)
    pruner.prepare()              # find layers, count binary ops, install all-ones masks
    pruner.prune()                # one shot: masks for 40% fewer binary ops
    ...                           # fine-tune; pruned weights stay exactly 0 and never update
    model = pruner.finalize()     # hooks removed; channel granularity physically shrinks

For gradual / iterative schedules call ``pruner.step()`` after every ``optimizer.step()``: with
``schedule="gradual"`` the pruned fraction of binary ops follows the cubic ramp of Zhu & Gupta
(2017), ``t_k = target * (1 - (1 - k/n)^3)``, from ``begin_step`` to ``end_step`` every
``frequency`` steps; ``schedule="oneshot"`` prunes once at ``begin_step`` (for ``method="flip"``
the steps before it are the flip-counting interval). Masks only grow: a pruned group never
comes back.

Pruned weights: the mask is the layer's ``weight_mask`` buffer, so the forward pass uses
``sign(w) * mask`` (exact zeros) and the layer gives masked weights zero gradient. On top of
that the pruner zeroes the masked latent weights before every forward pass and, when given the
optimizer, after every optimizer step and in the optimizer's state (Adam moments), so momentum
or weight decay cannot move them either.

Per-layer ratios (the fraction of a layer's groups pruned) come from ``ratios`` (explicit,
e.g. from :func:`onebit.prune.sensitivity.allocate`) or from an ``allocation`` rule solved by
bisection so that the exact binary-op count meets ``target``:
``uniform`` (same ratio everywhere), ``global`` (one score threshold across layers) or ``flip``
(ratio proportional to each layer's fraction of insensitive weights, Li & Ren 2020; when
that alone cannot reach the target because some layers have no insensitive weights, a uniform
floor on all layers rises until it does). ``flip_order`` (``"frequent"``, the study's, or
``"rare"``) only reverses the ranking inside each layer (:func:`onebit.prune.scores.flip_score`);
the ``flip`` allocation is the same for both.

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
  that plan can overshoot. Then, once per layer, the pruner gives back one multiple (keeps ``m``
  more channels) where the target stays met, each time the step leaving the least overshoot;
  so the achieved reduction is >= target and every layer stays within about one multiple of the
  allocation's rounded count. If no aligned plan reaches the target a ``PruneError`` says the
  most that is reachable.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from onebit.prune import granularity as gran
from onebit.prune.bops import count_bops, input_size_of, layer_positions
from onebit.prune.flips import FlipCounter
from onebit.prune.layers import (
    PruneError, binary_layers, get_mask, set_mask, zero_pruned_latents,
)
from onebit.prune.scores import FLIP_ORDERS, METHODS, score

ALLOCATIONS = ("uniform", "global", "flip")
SCHEDULES = ("oneshot", "gradual")


class _Ranking(NamedTuple):
    order: dict[str, torch.Tensor]  # per layer: group indices, first pruned first
    dead: dict[str, int]            # per layer: groups already fully pruned (they sort first)


class Pruner:
    """See the module docstring. ``target`` is the fraction of binary ops removed relative to
    the unpruned model (0.4 = 40% fewer bit-MACs)."""

    def __init__(self, model: nn.Module, method: str = "latent", granularity: str = "weight",
                 target: float | None = None, *, ratios: dict[str, float] | None = None,
                 allocation: str | None = None, schedule: str = "oneshot", begin_step: int = 0,
                 end_step: int | None = None, frequency: int = 1,
                 flip_counter: FlipCounter | None = None, flip_threshold: int = 0,
                 flip_order: str = "frequent", max_ratio: float = 0.95, input_size=None, exclude=(),
                 layers=None, seed: int = 0,
                 optimizer: torch.optim.Optimizer | None = None, channel_multiple: int = 1):
        if method not in METHODS:
            raise PruneError(f"unknown pruning method {method!r}; choose one of {METHODS}")
        if granularity not in gran.GRANULARITIES:
            raise PruneError(f"unknown granularity {granularity!r}; choose one of {gran.GRANULARITIES}")
        if (target is None) == (ratios is None):
            raise PruneError("give exactly one of target (fraction of binary ops removed) or ratios")
        if target is not None and not 0.0 <= float(target) < 1.0:
            raise PruneError(f"target must be a fraction in [0, 1), got {target}")
        if ratios is not None:
            bad = {k: v for k, v in ratios.items() if not 0.0 <= float(v) <= max_ratio}
            if bad:
                raise PruneError(f"ratios must lie in [0, max_ratio={max_ratio}]: {bad}")
        if allocation is None:
            allocation = "flip" if method == "flip" else "uniform"
        if allocation not in ALLOCATIONS:
            raise PruneError(f"unknown allocation {allocation!r}; choose one of {ALLOCATIONS}")
        if flip_order not in FLIP_ORDERS:
            raise PruneError(f"unknown flip order {flip_order!r}; choose one of {FLIP_ORDERS}")
        if schedule not in SCHEDULES:
            raise PruneError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
        if schedule == "gradual" and (end_step is None or end_step <= begin_step):
            raise PruneError("schedule 'gradual' needs end_step > begin_step")
        if not 0.0 < max_ratio < 1.0:
            raise PruneError(f"max_ratio must be in (0, 1), got {max_ratio}")
        if isinstance(channel_multiple, bool) or not isinstance(channel_multiple, int) or channel_multiple < 1:
            raise PruneError(f"channel_multiple must be an integer >= 1, got {channel_multiple!r}")
        if channel_multiple > 1 and granularity != "channel":
            raise PruneError(f"channel_multiple={channel_multiple} needs granularity 'channel' "
                             f"(kept output channel counts), not {granularity!r}")
        self.model = model
        self.method = method
        self.granularity = granularity
        self.target = None if target is None else float(target)
        self.ratios = None if ratios is None else {k: float(v) for k, v in ratios.items()}
        self.allocation = allocation
        self.schedule = schedule
        self.begin_step = int(begin_step)
        self.end_step = end_step
        self.frequency = max(1, int(frequency))
        self.flip_counter = flip_counter
        self.flip_threshold = int(flip_threshold)
        self.flip_order = flip_order
        self.max_ratio = float(max_ratio)
        self.input_size = input_size
        self.exclude = tuple(exclude)
        self.only = None if layers is None else tuple(layers)
        self.seed = int(seed)
        self.optimizer = optimizer
        self.channel_multiple = channel_multiple
        self.step_count = 0
        self.pruned = False
        self.current_target = 0.0
        self.achieved: dict[str, float] = {}
        self.prune_info: dict = {}
        self._prepared = False
        self._finalized = False
        self._hooks: list = []

    # ------------------------------------------------------------------ lifecycle
    def prepare(self) -> "Pruner":
        """Find the binary layers, count dense binary ops, install masks and hooks."""
        if self._prepared:
            raise PruneError("prepare() was already called")
        all_layers = dict(binary_layers(self.model))
        layers = dict(binary_layers(self.model, self.exclude))
        if self.only is not None:
            missing = [n for n in self.only if n not in layers]
            if missing:
                raise PruneError(f"not prunable binary layers: {missing}; known: {list(layers)}")
            layers = {n: layers[n] for n in self.only}
        if not layers:
            raise PruneError("the model has no binary layers to prune")
        self._all = all_layers
        self.positions = layer_positions(self.model, self.input_size)
        self.base = count_bops(self.model, positions=self.positions)
        self.base_bops = self.base.dense_bops
        # Channel coupling and the dense layers' NHWC input order need the dataflow graph.
        self.flow = None
        chw = {}
        if self.granularity in ("channel", "word", "block"):
            from onebit.prune.graph import dataflow

            try:
                self.flow = dataflow(self.model, self.input_size)
                chw = self.flow.linear_input_chw
            except PruneError:
                if self.granularity == "channel":
                    raise
        if self.granularity == "channel":
            blocked = {n: self.flow.chains[n].error for n in layers if self.flow.chains[n].error}
            if self.ratios is not None:
                bad = {n: blocked[n] for n in self.ratios if n in blocked and self.ratios[n] > 0}
                if bad:
                    raise PruneError(f"cannot channel-prune {bad}")
            layers = {n: m for n, m in layers.items() if n not in blocked}
            self.blocked = blocked
            if not layers:
                shown = "; ".join(list(blocked.values())[:3])
                more = f" (+{len(blocked) - 3} more)" if len(blocked) > 3 else ""
                raise PruneError(f"no layer can be channel-pruned (residual or branching model?): {shown}{more}")
        else:
            self.blocked = {}
        if self.ratios is not None:
            unknown = [n for n in self.ratios if n not in layers and n not in self.blocked]
            if unknown:
                raise PruneError(f"ratios for unknown layers {unknown}; prunable: {list(layers)}")
        self.layers = layers
        self.groups = {}
        for name, layer in layers.items():
            idx, n = gran.group_index(tuple(layer.weight.shape), self.granularity, chw.get(name))
            self.groups[name] = (idx, n)
        self.initial_masks = {n: get_mask(m).detach().clone() for n, m in all_layers.items()}
        self._dense_at_prepare = {n for n, m in all_layers.items() if getattr(m, "weight_mask", None) is None}
        gen = torch.Generator().manual_seed(self.seed)
        self.random_scores = {n: torch.rand(m.weight.shape, generator=gen, dtype=torch.float64)
                              for n, m in layers.items()} if self.method == "random" else {}
        if self.method == "flip" and self.flip_counter is None:
            self.flip_counter = FlipCounter(self.model, list(layers))
        for name, layer in all_layers.items():
            self._hooks.append(layer.register_forward_pre_hook(lambda mod, args: zero_pruned_latents(mod)))
        if self.optimizer is not None:
            self._hooks.append(self.optimizer.register_step_post_hook(lambda *_: self._enforce()))
        self._prepared = True
        return self

    def step(self) -> bool:
        """Advance the schedule by one training step; returns True when it pruned."""
        self._check_live()
        self.step_count += 1
        if self.method == "flip" and self.flip_counter is not None and self.flip_counter._hook is None:
            self.flip_counter.update()
        k = self.step_count
        if self.schedule == "oneshot" or self.ratios is not None:
            if not self.pruned and k >= max(1, self.begin_step):
                self.prune()
                return True
            return False
        if k < self.begin_step or k > self.end_step:
            return False
        if (k - self.begin_step) % self.frequency and k != self.end_step:
            return False
        progress = min(1.0, (k - self.begin_step) / (self.end_step - self.begin_step))
        t = self.target * (1.0 - (1.0 - progress) ** 3)
        if t <= self.current_target:
            return False
        self.prune(t)
        if self.method == "flip":
            self.flip_counter.reset()  # iterative: the next interval counts afresh
        return True

    def prune(self, target: float | None = None, ratios: dict[str, float] | None = None) -> dict:
        """Prune now to ``target`` (default: the pruner's target, or its explicit ratios), or
        to explicit per-layer ``ratios`` (e.g. from the sensitivity allocator). Returns
        :meth:`report`."""
        self._check_live()
        scores, orders = self._rank()
        if ratios is not None and target is not None:
            raise PruneError("give target or ratios, not both")
        if ratios is None and target is None and self.ratios is not None:
            ratios = self.ratios
        if ratios is not None:
            unknown = [n for n in ratios if n not in self.layers and ratios[n] > 0]
            if unknown:
                raise PruneError(f"ratios for layers that cannot be pruned here: {unknown}")
            bad = {k: v for k, v in ratios.items() if not 0.0 <= float(v) <= self.max_ratio}
            if bad:
                raise PruneError(f"ratios must lie in [0, max_ratio={self.max_ratio}]: {bad}")
            ratios = {n: float(ratios.get(n, 0.0)) for n in self.layers}
            masks = self._masks(ratios, orders)
            self.current_target = self._reduction(masks)
        else:
            t = self.target if target is None else float(target)
            if not 0.0 <= t < 1.0:
                raise PruneError(f"target must be a fraction in [0, 1), got {t}")
            ratios, masks = self._solve(t, scores, orders)
            self.current_target = t
        self._apply(masks)
        self.achieved = self._achieved_ratios(masks)
        self.pruned = True
        return self.report()

    def finalize(self) -> nn.Module:
        """Bake the masks (latents of pruned weights set to 0), remove hooks, and for channel
        granularity physically remove the pruned filters and the next layers' inputs (new
        parameter tensors: build a new optimizer to train further). ``prune_info`` then holds
        what a pruned checkpoint stores (see :mod:`onebit.prune.checkpoint`)."""
        self._check_live()
        for layer in self._all.values():
            zero_pruned_latents(layer)
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self.flip_counter is not None:
            self.flip_counter.detach()
        report = self.report()
        info = {
            "method": self.method, "granularity": self.granularity, "target": self.target,
            "ratios": self.achieved,
            **({"flip_order": self.flip_order} if self.method == "flip" else {}),
            **({"channel_multiple": self.channel_multiple} if self.channel_multiple > 1 else {}),
            "base_bops": self.base_bops, "bops": report["bops"], "reduction": report["reduction"],
            "input_size": list(input_size_of(self.model, self.input_size)),
        }
        if self.granularity == "channel":
            from onebit.prune.shrink import shrink

            info["channels"] = shrink(self.model, self.input_size)
            for layer in dict(binary_layers(self.model)).values():
                if getattr(layer, "weight_mask", None) is not None and bool(layer.weight_mask.all()):
                    set_mask(layer, None)
        self.prune_info = info
        self._finalized = True
        return self.model

    def restore(self) -> None:
        """Undo all pruning done by this pruner: the masks the model had at ``prepare()``
        (pruned latents that were zeroed stay 0 unless the caller reloads the weights)."""
        self._check_live()
        for name, layer in self._all.items():
            set_mask(layer, None if name in self._dense_at_prepare else self.initial_masks[name].clone())
        self.achieved, self.pruned, self.current_target = {}, False, 0.0

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "config": {"method": self.method, "granularity": self.granularity, "target": self.target,
                       "allocation": self.allocation, "schedule": self.schedule, "seed": self.seed,
                       "flip_order": self.flip_order, "channel_multiple": self.channel_multiple},
            "step_count": self.step_count,
            "pruned": self.pruned,
            "current_target": self.current_target,
            "achieved": dict(self.achieved),
            "masks": {n: get_mask(m).detach().bool().cpu() for n, m in self._all.items()},
            "flip_counter": None if self.flip_counter is None else self.flip_counter.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self._check_live()
        cfg = state["config"]
        for key, default in (("method", None), ("granularity", None), ("channel_multiple", 1)):
            if cfg.get(key, default) != getattr(self, key):
                raise PruneError(f"state was saved with {key}={cfg.get(key, default)!r}, "
                                 f"this pruner has {getattr(self, key)!r}")
        unknown = set(state["masks"]) - set(self._all)
        if unknown:
            raise PruneError(f"masks for unknown layers: {sorted(unknown)}")
        self.step_count = int(state["step_count"])
        self.pruned = bool(state.get("pruned", True))
        self.current_target = float(state["current_target"])
        self.achieved = dict(state["achieved"])
        self._apply({n: m.float() for n, m in state["masks"].items()})
        if state.get("flip_counter") is not None:
            if self.flip_counter is None:
                self.flip_counter = FlipCounter(self.model, list(state["flip_counter"]["counts"]))
            self.flip_counter.load_state_dict(state["flip_counter"])

    # ------------------------------------------------------------------ reporting
    def report(self) -> dict:
        """Per-layer ratio / live weights / binary ops and the totals vs the unpruned model."""
        now = count_bops(self.model, positions=self.positions)
        rows = {}
        for name, v in now.layers.items():
            rows[name] = dict(v, ratio=self.achieved.get(name, 0.0), prunable=name in self.layers)
        bops = now.bops
        return {"layers": rows, "bops": bops, "base_bops": self.base_bops,
                "reduction": 1.0 - bops / self.base_bops if self.base_bops else 0.0}

    def reduction(self, ratios: dict[str, float]) -> float:
        """Exact fraction of binary ops removed if the layers were pruned at ``ratios`` now."""
        return self.reduction_fn()(ratios)

    def reduction_fn(self):
        """``f(ratios) -> fraction of binary ops removed`` with the current scores frozen
        (cheap to call many times, e.g. by :func:`onebit.prune.sensitivity.allocate`)."""
        self._check_live()
        _, orders = self._rank()
        return lambda ratios: self._reduction(self._masks({n: ratios.get(n, 0.0) for n in self.layers}, orders))

    # ------------------------------------------------------------------ internals
    def _check_live(self) -> None:
        if not self._prepared:
            raise PruneError("call prepare() first")
        if self._finalized:
            raise PruneError("the pruner was finalized")

    def _rank(self) -> tuple[dict[str, torch.Tensor], "_Ranking"]:
        """Group scores, and each layer's groups in pruning order (fully pruned groups first)
        with the count of groups already fully pruned."""
        scores = self._group_scores()
        return scores, _Ranking({n: torch.sort(s, stable=True).indices for n, s in scores.items()},
                                {n: int(torch.isneginf(s).sum()) for n, s in scores.items()})

    def _group_scores(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, layer in self.layers.items():
            w = layer.weight
            if self.method == "random":
                s = self.random_scores[name]
            elif self.method == "flip":
                if self.flip_counter is None or name not in self.flip_counter.counts:
                    raise PruneError(f"no flip counts for layer {name!r}")
                if self.flip_counter.steps == 0:
                    raise PruneError("method 'flip' needs flip counts: call step() (or "
                                     "FlipCounter.update()) during training before pruning")
                s = score("flip", w, counts=self.flip_counter.counts[name], threshold=self.flip_threshold,
                          flip_order=self.flip_order)
            else:
                s = score(self.method, w)
            idx, n = self.groups[name]
            mask = get_mask(layer).detach().cpu().double()
            # mean over the group's live weights only (inputs an earlier cut removed carry no
            # evidence); a group that is already fully pruned sorts first: masks only grow
            alive = gran.group_mean(mask, idx, n)
            g = gran.group_mean(s * mask, idx, n) / alive.clamp(min=1e-12)
            g[alive == 0] = -float("inf")
            out[name] = g
        return out

    def _masks(self, ratios: dict[str, float], orders: "_Ranking") -> dict[str, torch.Tensor]:
        masks = {n: self.initial_masks[n].clone().cpu() for n in self._all}
        for name in self.layers:
            idx, n = self.groups[name]
            k = self._pruned_count(name, ratios.get(name, 0.0), orders.dead[name])
            keep = torch.ones(n, dtype=torch.float32)
            keep[orders.order[name][:k]] = 0.0
            masks[name] = masks[name] * gran.expand_keep(keep, idx)
            if self.granularity == "channel" and k > 0:
                self._kill_consumer_inputs(name, keep, masks)
        return masks

    def _pruned_count(self, name: str, ratio: float, dead: int) -> int:
        """Groups of layer ``name`` pruned at ``ratio`` (``dead`` of them already are)."""
        n = self.groups[name][1]
        k = int(round(min(float(ratio), self.max_ratio) * n))
        if self.granularity == "channel":
            k = min(k, n - 1)  # a layer keeps at least one channel
            if self.channel_multiple > 1:
                k = n - self._aligned_keep(name, n - k, dead)
        return k

    def _aligned_keep(self, name: str, want: int, dead: int = 0) -> int:
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

    def _reduction(self, masks: dict[str, torch.Tensor]) -> float:
        bops = sum(self.positions[n] * int(m.count_nonzero()) for n, m in masks.items() if n in self.positions)
        return 1.0 - bops / self.base_bops

    def _achieved_ratios(self, masks) -> dict[str, float]:
        out = {}
        for name in self.layers:
            idx, n = self.groups[name]
            alive = gran.group_mean(masks[name], idx, n)
            out[name] = float((alive == 0).double().mean())
        return out

    def _ratio_rule(self, scores):
        """Map a scalar s to per-layer ratios, monotone in s; returns (rule, s_max)."""
        names = list(self.layers)
        if self.allocation == "uniform":
            return (lambda s: {n: min(s, self.max_ratio) for n in names}), self.max_ratio
        if self.allocation == "flip":
            if self.flip_counter is None or self.flip_counter.steps == 0:
                raise PruneError("allocation 'flip' needs flip counts (a FlipCounter with steps)")
            frac = {n: float(self.flip_counter.insensitive(n, self.flip_threshold).float().mean())
                    for n in names}
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

    def _solve(self, target: float, scores, orders):
        rule, s_max = self._ratio_rule(scores)
        if target == 0.0:
            ratios = {n: self.achieved.get(n, 0.0) for n in self.layers}
            return ratios, self._masks(ratios, orders)
        top = self._masks(rule(s_max), orders)
        if self._reduction(top) < target - 1e-12:
            aligned = f" and channel_multiple {self.channel_multiple}" if self.channel_multiple > 1 else ""
            raise PruneError(
                f"target {target:.0%} fewer binary ops is unreachable: at most "
                f"{self._reduction(top):.1%} with allocation {self.allocation!r}, max_ratio {self.max_ratio}{aligned}")
        lo, hi = 0.0, s_max
        for _ in range(50):
            mid = (lo + hi) / 2
            if self._reduction(self._masks(rule(mid), orders)) >= target - 1e-12:
                hi = mid
            else:
                lo = mid
        ratios = rule(hi)
        if self.channel_multiple > 1:
            ratios = self._give_back(ratios, target, orders)
        return ratios, self._masks(ratios, orders)

    def _give_back(self, ratios: dict[str, float], target: float, orders) -> dict[str, float]:
        """Channel multiple: from the bisected plan, keep one more multiple in a layer where the
        target stays met (each layer at most once), each time the step leaving the least
        overshoot. Returns ratios that reproduce the kept counts exactly."""
        dead = orders.dead
        kept = {name: self.groups[name][1] - self._pruned_count(name, ratios.get(name, 0.0), dead[name])
                for name in self.layers}
        as_ratios = lambda kp: {n: (self.groups[n][1] - c) / self.groups[n][1] for n, c in kp.items()}  # noqa: E731
        todo = set(self.layers)
        while todo:
            best = None
            for name in sorted(todo):
                more = self._aligned_keep(name, kept[name] + self.channel_multiple, dead[name])
                if more <= kept[name]:
                    continue
                red = self._reduction(self._masks(as_ratios({**kept, name: more}), orders))
                if red >= target - 1e-12 and (best is None or red < best[0]):
                    best = (red, name, more)
            if best is None:
                break
            kept[best[1]] = best[2]
            todo.discard(best[1])
        return as_ratios(kept)

    def _apply(self, masks: dict[str, torch.Tensor]) -> None:
        for name, layer in self._all.items():
            if name not in masks:
                continue
            m = masks[name]
            set_mask(layer, None if bool(m.all()) and getattr(layer, "weight_mask", None) is None else m)
        self._enforce()

    @torch.no_grad()
    def _enforce(self) -> None:
        """Zero the pruned latents and their optimizer state (momentum must not move them)."""
        for layer in self._all.values():
            mask = getattr(layer, "weight_mask", None)
            if mask is None:
                continue
            layer.weight.mul_(mask)
            if self.optimizer is not None:
                state = self.optimizer.state.get(layer.weight, {})
                for v in state.values():
                    if torch.is_tensor(v) and v.shape == layer.weight.shape:
                        v.mul_(mask)
