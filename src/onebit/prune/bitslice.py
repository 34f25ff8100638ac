"""CBNN input bit-slice pruning (Li and Ren, arXiv 1802.00904): bit-level sensitivity of a model
with a bit-plane input (``create(..., input_bits=...)``), choice of the planes to keep for an
accuracy budget, and the shrunk first layer.

- **Per-plane sensitivity**: validation accuracy with one plane replaced by random +-1 (mean
  over ``seeds`` draws), for every plane; ``drop = baseline - accuracy``.
- **Cumulative sensitivity**: planes sorted from the least to the most sensitive; accuracy with
  the first k of them randomized together, k = 1 .. P-1.
- **Choice**: the largest k whose cumulative drop is at most ``max_loss`` (accuracy points);
  those planes are pruned, the others kept (:func:`choose_planes`).
- **Shrink**: :func:`shrink_planes` rebuilds the ``BitPlanes`` layer with the kept plane ids
  and keeps the first convolution's weights of the kept planes (a removed plane contributes 0,
  the expectation of a random +-1 plane); fine-tuning then adapts the network.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from onebit.bitplanes import PLANE_BITS
from onebit.nn.planes import BitPlanes
from onebit.prune.layers import PruneError

__all__ = ["PlaneSensitivity", "plane_sensitivity", "choose_planes", "shrink_planes", "planes_layer",
           "prune_checkpoint_bitslice"]


def planes_layer(model: nn.Module) -> tuple[str, BitPlanes, str, nn.Conv2d]:
    """(name, BitPlanes, name, first conv) of a model with a bit-plane input, else PruneError."""
    from onebit.models.planes import input_planes_layer

    planes = input_planes_layer(model)
    if planes is None:
        raise PruneError("the model has no bit-plane input layer (BitPlanes): build it with "
                         "input_bits=K (onebit train --input-bits K) to prune input bit planes")
    children = list(model.named_children())
    (pname, _), (cname, conv) = children[0], children[1]
    if not isinstance(conv, nn.Conv2d) or conv.in_channels != planes.out_channels:
        raise PruneError(f"layer {cname!r} after the bit planes is not a convolution over them")
    return pname, planes, cname, conv


@dataclass
class PlaneSensitivity:
    """Per-plane and cumulative sensitivity (accuracies are fractions)."""

    planes: list  # plane ids, in the model's order
    baseline: float
    accuracy: list  # per plane: mean accuracy with it randomized
    order: list = field(default_factory=list)  # plane ids, least sensitive first
    cumulative: list = field(default_factory=list)  # accuracy with order[:k] randomized, k = 1..P-1
    seeds: int = 1

    def drop(self) -> list:
        return [self.baseline - a for a in self.accuracy]

    def to_dict(self) -> dict:
        return {"planes": list(self.planes), "baseline": self.baseline, "accuracy": list(self.accuracy),
                "order": list(self.order), "cumulative": list(self.cumulative), "seeds": self.seeds}


def _accuracy_randomized(model, planes: BitPlanes, positions, evaluate_fn, seeds: int, seed: int) -> float:
    accs = []
    for s in range(seeds):
        planes.randomize = set(positions)
        planes.generator = torch.Generator().manual_seed(seed + s)
        try:
            accs.append(evaluate_fn(model))
        finally:
            planes.randomize, planes.generator = None, None
    return sum(accs) / len(accs)


def plane_sensitivity(model: nn.Module, evaluate_fn, *, seeds: int = 3, seed: int = 0,
                      cumulative: bool = True, progress: bool = False) -> PlaneSensitivity:
    """Measure per-plane (and cumulative) sensitivity; ``evaluate_fn(model) -> accuracy``."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    _, planes, _, _ = planes_layer(model)
    ids = list(planes.planes)
    p = len(ids)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=p + (max(0, p - 1) if cumulative else 0), desc="plane sensitivity", leave=False)
    try:
        base = evaluate_fn(model)
        acc = []
        for i in range(p):
            acc.append(_accuracy_randomized(model, planes, [i], evaluate_fn, seeds, seed))
            if bar is not None:
                bar.update(1)
        # least sensitive first; ties broken towards the less significant bit
        pos = sorted(range(p), key=lambda i: (base - acc[i], ids[i] % PLANE_BITS, ids[i]))
        cum = []
        if cumulative:
            for k in range(1, p):
                cum.append(_accuracy_randomized(model, planes, pos[:k], evaluate_fn, seeds, seed))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return PlaneSensitivity(ids, base, acc, [ids[i] for i in pos], cum, seeds)


def choose_planes(sens: PlaneSensitivity, max_loss: float) -> list:
    """Plane ids to keep: drop the longest prefix of ``sens.order`` whose cumulative accuracy
    drop is at most ``max_loss`` (a fraction: 0.01 = one point). At least one plane is kept."""
    if not sens.cumulative and len(sens.planes) > 1:
        raise ValueError("choose_planes needs the cumulative sensitivity")
    k = 0
    for i, a in enumerate(sens.cumulative, 1):
        if sens.baseline - a <= max_loss:
            k = i
    dropped = set(sens.order[:k])
    return [p for p in sens.planes if p not in dropped]


@torch.no_grad()
def shrink_planes(model: nn.Sequential, keep) -> nn.Sequential:
    """The model with only the plane ids ``keep`` in its input (a new model; weights copied)."""
    import copy

    pname, planes, cname, conv = planes_layer(model)
    keep = sorted(int(p) for p in keep)
    missing = [p for p in keep if p not in planes.planes]
    if not keep or missing:
        raise PruneError(f"planes to keep {keep} must be a non-empty subset of the model's {list(planes.planes)}")
    idx = [planes.planes.index(p) for p in keep]
    new = copy.deepcopy(model)
    np_ = BitPlanes(keep, planes.channels, planes.mean.tolist(), planes.std.tolist())
    nc = nn.Conv2d(len(keep), conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                   bias=conv.bias is not None)
    nc.weight.copy_(conv.weight[:, idx])
    if conv.bias is not None:
        nc.bias.copy_(conv.bias)
    setattr(new, pname, np_)
    setattr(new, cname, nc)
    if hasattr(new, "onebit_config"):
        new.onebit_config = dict(new.onebit_config, input_bits=keep)
    return new


def prune_checkpoint_bitslice(ckpt_path, *, max_loss: float = 0.01, seeds: int = 3, finetune_epochs: float = 0.0,
                              out=None, lr: float = 1e-4, batch_size: int = 128, val_size: int = 5000,
                              limit_train: int | None = None, limit_test: int | None = None, seed: int = 0,
                              plot_dir=None, progress: bool = True) -> dict:
    """What ``onebit prune --method bitslice`` runs: sensitivity on the validation tail of the
    training split, choice of planes for ``max_loss``, shrink, optional fine-tune, test accuracy,
    save. Returns a JSON-able record (accuracies are fractions)."""
    import time
    from pathlib import Path

    from onebit.bitplanes import describe_planes
    from onebit.prune import finetune as ft
    from onebit.prune.checkpoint import load_checkpoint, save_pruned

    if not 0.0 <= max_loss < 1.0:
        raise PruneError(f"max_loss is a fraction of accuracy in [0, 1), got {max_loss}")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model, ckpt = load_checkpoint(ckpt_path)
    _, planes, _, _ = planes_layer(model)
    dataset = ckpt["dataset"]
    size = (ckpt.get("train_config") or {}).get("size")
    test = ft.test_loader(dataset, limit=limit_test, size=size)
    val = ft.validation_loader(dataset, val_size, size=size)
    base_acc = ft.evaluate(model, test)
    sens = plane_sensitivity(model, lambda m: ft.evaluate(m, val), seeds=seeds, seed=seed, progress=progress)
    keep = choose_planes(sens, max_loss)
    pruned = shrink_planes(model, keep)
    acc_before = ft.evaluate(pruned, test)
    if finetune_epochs > 0:
        train = ft.train_loader(dataset, val_size, batch_size, limit=limit_train, seed=seed, size=size)
        ft.finetune(pruned, train, epochs=finetune_epochs, lr=lr, schedule="cosine", progress=progress)
    acc = ft.evaluate(pruned, test)
    record = {
        "checkpoint": str(ckpt_path), "model_config": ckpt["model_config"], "dataset": dataset,
        "method": "bitslice", "max_loss": max_loss,
        "budget": {"seeds": seeds, "finetune_epochs": finetune_epochs, "lr": lr, "batch_size": batch_size,
                   "val_size": val_size, "limit_train": limit_train, "limit_test": limit_test,
                   "torch_threads": torch.get_num_threads()},
        "baseline": {"test_accuracy": base_acc, "planes": list(planes.planes)},
        "sensitivity": sens.to_dict(),
        "pruned": {"planes": keep, "planes_text": describe_planes(keep, planes.channels),
                   "test_accuracy_before_finetune": acc_before, "test_accuracy": acc,
                   "val_accuracy": ft.evaluate(pruned, val)},
    }
    record["seconds"] = time.perf_counter() - t0
    if out is not None:
        base = dict(ckpt, model_config=dict(pruned.onebit_config))
        info = {"method": "bitslice", "planes": keep, "max_loss": max_loss}
        save_pruned(out, pruned, base, info, {k: record[k] for k in ("baseline", "pruned", "budget")})
        record["output"] = str(out)
    if plot_dir is not None:
        from onebit.prune.plots import plot_plane_sensitivity

        record["plots"] = [str(plot_plane_sensitivity(sens, planes.channels, max_loss,
                                                      Path(plot_dir) / "plane_sensitivity.png"))]
    return record
