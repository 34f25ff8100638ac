"""PNG plots (matplotlib, Agg backend): per-layer sensitivity curves and accuracy vs binary
ops (Pareto) across pruning methods."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_MARKERS = {"weight": "o", "word": "s", "block": "D", "channel": "^"}


def plot_sensitivity(curves, path) -> Path:
    """One accuracy-vs-ratio line per layer; the unpruned baseline dashed."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, acc in curves.accuracy.items():
        ax.plot([0.0] + list(curves.ratios), [100 * curves.baseline] + [100 * a for a in acc],
                marker="o", ms=3, label=name)
    ax.axhline(100 * curves.baseline, color="gray", ls="--", lw=1, label="unpruned")
    ax.set_xlabel(f"fraction of the layer's {curves.granularity} groups pruned")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"layer sensitivity ({curves.method}, {curves.granularity})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_plane_sensitivity(sens, channels: int, max_loss: float, path) -> Path:
    """CBNN bit-level sensitivity: accuracy drop per input bit plane (bars, grouped by colour,
    LSB to MSB) and the cumulative drop with the least sensitive planes randomized together,
    against the budget ``max_loss``."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    drop = [100 * d for d in sens.drop()]
    labels = [f"c{p // 8}b{p % 8}" if channels > 1 else f"b{p % 8}" for p in sens.planes]
    a1.bar(range(len(drop)), drop, color=[f"C{p // 8}" for p in sens.planes])
    a1.set_xticks(range(len(drop)), labels, rotation=90, fontsize=7)
    a1.set_ylabel("validation accuracy drop (points)")
    a1.set_title(f"one plane randomized (mean of {sens.seeds} seeds)")
    a1.grid(alpha=0.3, axis="y")
    k = list(range(1, len(sens.cumulative) + 1))
    a2.plot(k, [100 * (sens.baseline - a) for a in sens.cumulative], marker="o", ms=3)
    a2.axhline(100 * max_loss, color="gray", ls="--", lw=1, label=f"budget {100 * max_loss:g} points")
    a2.set_xlabel("planes randomized (least sensitive first)")
    a2.set_ylabel("validation accuracy drop (points)")
    a2.set_title("cumulative")
    a2.grid(alpha=0.3)
    a2.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_pareto(points: list[dict], path, baseline: dict | None = None) -> Path:
    """Accuracy vs binary ops. ``points``: dicts with ``method``, ``granularity``, ``bops``,
    ``accuracy`` (fraction); ``baseline``: ``{"bops", "accuracy"}`` (accuracy may be a list
    of seeds: drawn as its range). Each method's Pareto front is drawn as a line."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    methods = sorted({p["method"] for p in points})
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for p in points:
        ax.scatter(p["bops"] / 1e6, 100 * p["accuracy"], color=colors[p["method"]],
                   marker=_MARKERS.get(p["granularity"], "x"), s=22)
    for m in methods:
        pts = sorted(((p["bops"], p["accuracy"]) for p in points if p["method"] == m))
        front, best = [], -1.0
        for b, a in pts:  # keep points no cheaper point beats
            if a > best:
                front.append((b, a))
                best = a
        ax.plot([b / 1e6 for b, _ in front], [100 * a for _, a in front], color=colors[m], lw=1,
                label=m)
    for g, mk in _MARKERS.items():
        if any(p["granularity"] == g for p in points):
            ax.scatter([], [], color="k", marker=mk, s=22, label=g)
    if baseline is not None:
        acc = baseline["accuracy"]
        accs = acc if isinstance(acc, (list, tuple)) else [acc]
        x = baseline["bops"] / 1e6
        ax.errorbar([x], [100 * sum(accs) / len(accs)],
                    yerr=[[100 * (sum(accs) / len(accs) - min(accs))], [100 * (max(accs) - sum(accs) / len(accs))]],
                    fmt="*", color="k", ms=9, label="unpruned")
    ax.set_xlabel("binary ops (M bit-MACs)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs binary ops")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
