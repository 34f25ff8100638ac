"""Layer-level sensitivity analysis and the per-layer ratio allocator (latent-weight pruning
with layer sensitivity, ASP-DAC 2023).

:func:`sweep` prunes one layer at a time at each ratio (10..90% of its groups by default),
optionally fine-tunes briefly, and measures validation accuracy: one curve per layer.
:func:`allocate` turns the curves into per-layer ratios that meet a global binary-ops target
with the least *predicted* loss, predicting the network's loss as the sum of the layers'
losses (each curve made non-decreasing: pruning more never predicts a gain). It is greedy by
marginal cost: starting from nothing pruned, repeatedly raise the layer whose next grid step
costs the least predicted loss per binary op removed, until the exact op count (from the
pruner, channel coupling included) meets the target; then walk back any step that is not
needed (most expensive first), so the target is met with the least overshoot. ``solver="dp"``
replaces the greedy climb by dynamic programming over the ratio grid (the exact optimum of the
additive loss model when the layers' op reductions add up; greedy can miss it when a curve has
a plateau after a drop), then finishes and walks back the same way.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from torch import nn

from onebit.prune.layers import PruneError

DEFAULT_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class SensitivityCurves:
    """Validation accuracy per layer per ratio (``accuracy[layer][i]`` at ``ratios[i]``)."""

    baseline: float
    ratios: list[float]
    accuracy: dict[str, list[float]]
    layer_bops: dict[str, int] = field(default_factory=dict)
    method: str = "latent"
    granularity: str = "weight"
    channel_multiple: int = 1

    def loss(self, layer: str) -> list[float]:
        """Predicted accuracy loss at each ratio, made non-decreasing in the ratio."""
        out, worst = [], 0.0
        for acc in self.accuracy[layer]:
            worst = max(worst, self.baseline - acc)
            out.append(worst)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SensitivityCurves":
        return cls(**d)


def sweep(model: nn.Module, evaluate_fn: Callable[[nn.Module], float], *, method: str = "latent",
          granularity: str = "weight", ratios: Sequence[float] = DEFAULT_RATIOS, layers=None,
          finetune_fn: Callable[[nn.Module, object], object] | None = None, flip_counter=None,
          input_size=None, seed: int = 0, progress: bool = False,
          channel_multiple: int = 1) -> SensitivityCurves:
    """Prune each layer alone at each ratio on a copy of ``model`` and record
    ``evaluate_fn(copy)``. ``finetune_fn(copy, pruner)``, if given, runs in between.
    ``channel_multiple`` (channel granularity): each point is the rounded plan
    ``Pruner(channel_multiple=...)`` makes of that ratio, the same one a pruner with that option
    applies for it after :func:`allocate`."""
    from onebit.prune.pruner import Pruner

    # one working copy, restored before every point (cheaper than a deep copy + trace each time)
    work = copy.deepcopy(model)
    probe = Pruner(work, method, granularity, ratios={}, flip_counter=_rebind(flip_counter, work),
                   input_size=input_size, seed=seed, channel_multiple=channel_multiple).prepare()
    names = list(probe.layers) if layers is None else list(layers)
    unknown = [n for n in names if n not in probe.layers]
    if unknown:
        raise PruneError(f"cannot sweep {unknown}: prunable layers are {list(probe.layers)}")
    bops = {n: v["dense_bops"] for n, v in probe.base.layers.items() if n in names}
    original = {k: v.detach().clone() for k, v in work.state_dict().items() if not k.endswith("weight_mask")}
    baseline = float(evaluate_fn(model))
    acc: dict[str, list[float]] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names) * len(ratios), desc="sensitivity", leave=False)
    for name in names:
        acc[name] = []
        for r in ratios:
            work.load_state_dict(original, strict=False)
            probe.restore()
            probe.prune(ratios={name: float(r)})
            if finetune_fn is not None:
                finetune_fn(work, probe)
            acc[name].append(float(evaluate_fn(work)))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return SensitivityCurves(baseline=baseline, ratios=[float(r) for r in ratios], accuracy=acc,
                             layer_bops=bops, method=method, granularity=granularity,
                             channel_multiple=channel_multiple)


def _rebind(counter, model):
    """A copy of ``counter`` bound to ``model`` (same layer names, same counts)."""
    if counter is None:
        return None
    from onebit.prune.flips import FlipCounter

    fc = FlipCounter(model, list(counter.counts))
    fc.load_state_dict(counter.state_dict())
    return fc


SOLVERS = ("greedy", "dp")


def allocate(curves: SensitivityCurves, target: float, reduction_fn: Callable[[dict], float], *,
             max_ratio: float = 0.9, step: float = 0.02, solver: str = "greedy", bins: int = 1000) -> dict:
    """Per-layer ratios meeting ``reduction_fn(ratios) >= target`` with the least predicted loss.

    ``reduction_fn`` is the exact binary-op reduction of a ratio assignment (use
    ``Pruner.reduction_fn()``). Curves are linearly interpolated on a ``step`` grid from 0 to
    ``max_ratio``. ``solver``: ``"greedy"`` (raise the layer with the least predicted loss per
    op removed, one grid step at a time) or ``"dp"`` (dynamic programming over the grid: the
    least total predicted loss, with each layer's reduction measured alone and rounded to
    ``1/bins`` of the network's ops, so optimal up to that quantization; where pruning several
    layers together removes less than the sum, e.g. a channel cut and its consumer's inputs, the
    internal target is raised until the exact count meets it, then greedy steps finish). Both
    end with the walk-back of unneeded steps. Returns ``{"ratios", "predicted_loss", "reduction", "solver"}``.
    """
    if not 0.0 <= target < 1.0:
        raise PruneError(f"target must be a fraction in [0, 1), got {target}")
    if solver not in SOLVERS:
        raise PruneError(f"unknown allocation solver {solver!r}; choose one of {SOLVERS}")
    names = list(curves.accuracy)
    n_steps = int(round(max_ratio / step))
    grid = [round(i * step, 10) for i in range(n_steps + 1)]
    xs = [0.0] + list(curves.ratios)

    def interp(name):
        ys = [0.0] + curves.loss(name)
        out = []
        for g in grid:
            if g >= xs[-1]:
                out.append(ys[-1])
                continue
            j = max(i for i in range(len(xs)) if xs[i] <= g)
            t = (g - xs[j]) / (xs[j + 1] - xs[j])
            out.append(ys[j] + t * (ys[j + 1] - ys[j]))
        return out

    loss = {n: interp(n) for n in names}
    idx = {n: 0 for n in names}
    if solver == "dp":
        idx = _dp_indices(names, grid, loss, target, reduction_fn, bins)
    ratios = lambda: {n: grid[idx[n]] for n in names}  # noqa: E731
    current = reduction_fn(ratios())
    while current < target - 1e-12:
        best = None
        for n in names:
            # next grid point that removes any op (coarse groups round several steps alike)
            start, gain, red = idx[n], 0.0, current
            while idx[n] + 1 < len(grid) and gain <= 0:
                idx[n] += 1
                red = reduction_fn(ratios())
                gain = red - current
            j, idx[n] = idx[n], start
            if gain <= 0:
                continue
            cost = max(0.0, loss[n][j] - loss[n][start]) / gain
            key = (cost, -gain)
            if best is None or key < best[0]:
                best = (key, n, red, j)
        if best is None:
            raise PruneError(f"target {target:.0%} unreachable with max_ratio {max_ratio}: "
                             f"at most {current:.1%}")
        idx[best[1]] = best[3]
        current = best[2]
    # walk back steps the target does not need, most expensive first
    improved = True
    while improved:
        improved = False
        order = sorted((n for n in names if idx[n] > 0),
                       key=lambda n: loss[n][idx[n]] - loss[n][idx[n] - 1], reverse=True)
        for n in order:
            idx[n] -= 1
            red = reduction_fn(ratios())
            if red >= target - 1e-12:  # loss curves are non-decreasing: never worse
                current = red
                improved = True
                break
            idx[n] += 1
    return {"ratios": ratios(), "predicted_loss": sum(loss[n][idx[n]] for n in names),
            "reduction": current, "solver": solver}


def _dp_indices(names, grid, loss, target, reduction_fn, bins, rounds=8) -> dict[str, int]:
    """Grid indices minimizing the summed predicted loss subject to the summed single-layer
    reductions (rounded to ``1/bins``: optimal up to that quantization) meeting the target; the
    internal target is raised by the exact shortfall up to ``rounds`` times (the caller's greedy
    loop finishes if needed)."""
    # each layer alone: its exact reduction at every grid point; keep the cheapest index per value
    options = {}
    for n in names:
        seen: dict[int, int] = {}
        for j in range(len(grid)):
            b = int(round(reduction_fn({n: grid[j]}) * bins))
            if b not in seen or loss[n][j] < loss[n][seen[b]]:
                seen[b] = j
        options[n] = sorted(seen.items())
    idx = {n: 0 for n in names}
    want = target
    for _ in range(rounds):
        cap = int(-(-want * bins // 1)) if want > 0 else 0  # ceil, reductions beyond it are capped
        inf = float("inf")
        best = [inf] * (cap + 1)
        best[0] = 0.0
        choice: list[list[int]] = []
        for n in names:
            nxt = [inf] * (cap + 1)
            pick = [0] * (cap + 1)
            for b in range(cap + 1):
                if best[b] == inf:
                    continue
                for gain, j in options[n]:
                    c = min(cap, b + gain)
                    v = best[b] + loss[n][j]
                    if v < nxt[c] - 1e-15:
                        nxt[c], pick[c] = v, (b << 16) | j
            best = nxt
            choice.append(pick)
        if best[cap] == inf:
            break  # unreachable by the separable model: let the greedy loop report or finish
        b = cap
        for n, pick in zip(reversed(names), reversed(choice)):
            idx[n] = pick[b] & 0xFFFF
            b = pick[b] >> 16
        exact = reduction_fn({n: grid[idx[n]] for n in names})
        if exact >= target - 1e-12:
            break
        want = min(1.0, want + (target - exact))
    return idx
