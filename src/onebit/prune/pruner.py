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
e.g. from :func:`onebit.prune.sensitivity.allocate`) or from an ``allocation`` rule (``uniform``,
``global``, ``flip``) solved so that the exact binary-op count meets ``target``; the solver, and
what ``channel_multiple`` does to it, is :mod:`onebit.prune.allocation`.
``flip_order`` (``"frequent"``, the study's, or ``"rare"``) only reverses the ranking inside
each layer (:func:`onebit.prune.scores.flip_score`).
"""
from __future__ import annotations

import torch
from torch import nn

from onebit.prune import granularity as gran
from onebit.prune.allocation import ALLOCATIONS, Allocator, Ranking
from onebit.prune.bops import count_bops, input_size_of, layer_positions
from onebit.prune.flips import FlipCounter
from onebit.prune.layers import (
    PruneError, binary_layers, get_mask, set_mask, zero_pruned_latents,
)
from onebit.prune.scores import FLIP_ORDERS, METHODS, score

SCHEDULES = ("oneshot", "gradual")


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
        self._alloc = Allocator(self.groups, self.initial_masks, self.positions, self.base_bops,
                                granularity=self.granularity, max_ratio=self.max_ratio,
                                channel_multiple=self.channel_multiple, flow=self.flow)
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
            masks = self._alloc.masks(ratios, orders)
            self.current_target = self._alloc.reduction(masks)
        else:
            t = self.target if target is None else float(target)
            if not 0.0 <= t < 1.0:
                raise PruneError(f"target must be a fraction in [0, 1), got {t}")
            rule, s_max = self._alloc.ratio_rule(self.allocation, scores, self.flip_counter, self.flip_threshold)
            ratios, masks = self._alloc.solve(t, rule, s_max, orders, self.achieved, self.allocation)
            self.current_target = t
        self._apply(masks)
        self.achieved = self._alloc.achieved_ratios(masks)
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
        return lambda ratios: self._alloc.reduction(self._alloc.masks({n: ratios.get(n, 0.0) for n in self.layers},
                                                                      orders))

    # ------------------------------------------------------------------ internals
    def _check_live(self) -> None:
        if not self._prepared:
            raise PruneError("call prepare() first")
        if self._finalized:
            raise PruneError("the pruner was finalized")

    def _rank(self) -> tuple[dict[str, torch.Tensor], Ranking]:
        """Group scores, and each layer's groups in pruning order (fully pruned groups first)
        with the count of groups already fully pruned."""
        scores = self._group_scores()
        return scores, Ranking({n: torch.sort(s, stable=True).indices for n, s in scores.items()},
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
