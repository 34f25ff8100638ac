"""Prune a trained checkpoint end to end (what ``onebit prune`` runs): evaluate the baseline,
count flips (flip method), optionally sweep layer sensitivity and allocate per-layer ratios,
prune (one shot or iteratively), fine-tune, finalize (shrink), evaluate and save."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from onebit.prune import finetune as ft
from onebit.prune.checkpoint import load_checkpoint, save_pruned
from onebit.prune.layers import PruneError
from onebit.prune.pruner import Pruner
from onebit.prune.sensitivity import DEFAULT_RATIOS, allocate, sweep


def prune_checkpoint(ckpt_path, *, method: str = "latent", granularity: str = "weight",
                     target: float = 0.4, sensitivity: bool = False, finetune_epochs: float = 0.0,
                     out=None, allocation: str | None = None, iterations: int = 1,
                     sweep_ratios=DEFAULT_RATIOS, val_size: int = 5000, flip_steps: int = 200,
                     flip_threshold: int = 0, flip_order: str = "frequent", lr: float = 1e-4,
                     batch_size: int = 128,
                     limit_train: int | None = None, limit_test: int | None = None, seed: int = 0,
                     max_ratio: float = 0.95, solver: str = "greedy", plot_dir=None,
                     progress: bool = True, channel_multiple: int = 1) -> dict:
    """Returns a JSON-able record of the run (accuracies are fractions)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model, ckpt = load_checkpoint(ckpt_path)
    dataset = ckpt["dataset"]
    size = (ckpt.get("train_config") or {}).get("size")
    test = ft.test_loader(dataset, limit=limit_test, size=size)
    val = ft.validation_loader(dataset, val_size, size=size)
    train = ft.train_loader(dataset, val_size, batch_size, limit=limit_train, seed=seed, size=size)
    base_acc = ft.evaluate(model, test)
    pruner = Pruner(model, method, granularity, target, allocation=allocation, seed=seed,
                    flip_threshold=flip_threshold, flip_order=flip_order, max_ratio=max_ratio,
                    channel_multiple=channel_multiple).prepare()
    record: dict = {
        "checkpoint": str(ckpt_path), "model_config": ckpt["model_config"], "dataset": dataset,
        "method": method, "granularity": granularity, "target": target,
        "allocation": "sensitivity" if sensitivity else pruner.allocation,
        "baseline": {"test_accuracy": base_acc, "bops": pruner.base_bops},
        "budget": {"finetune_epochs": finetune_epochs, "iterations": iterations, "lr": lr,
                   "batch_size": batch_size, "limit_train": limit_train, "limit_test": limit_test,
                   "val_size": val_size, "max_ratio": max_ratio, "channel_multiple": channel_multiple,
                   "torch_threads": torch.get_num_threads()},
    }
    if method == "flip":
        # the counting interval: a short stretch of training with a FlipCounter (Li & Ren 2020)
        stats = ft.finetune(model, train, max_steps=flip_steps, lr=lr, flip_counter=pruner.flip_counter,
                            progress=progress)
        record["flip_interval"] = {"steps": stats["steps"],
                                   "insensitive_fraction": pruner.flip_counter.insensitive_fraction(flip_threshold)}
        record["budget"]["flip_steps"] = flip_steps
        record["flip_order"] = flip_order
    ratios = None
    if sensitivity:
        def val_acc(m):
            return ft.evaluate(m, val)

        curves = sweep(model, val_acc, method=method, granularity=granularity, ratios=sweep_ratios,
                       flip_counter=pruner.flip_counter, seed=seed, progress=progress,
                       channel_multiple=channel_multiple)
        alloc = allocate(curves, target, pruner.reduction_fn(), max_ratio=min(0.9, pruner.max_ratio),
                         solver=solver)
        ratios = alloc["ratios"]
        record["sensitivity"] = curves.to_dict()
        record["allocation_result"] = alloc
        if plot_dir is not None:
            from onebit.prune.plots import plot_sensitivity

            record["plots"] = [str(plot_sensitivity(curves, Path(plot_dir) / "sensitivity.png"))]
    if iterations < 1:
        raise PruneError(f"iterations must be >= 1, got {iterations}")
    per_stage = finetune_epochs / iterations
    accs_before = None
    for i in range(iterations):
        if ratios is not None:
            frac = (i + 1) / iterations
            pruner.prune(ratios={n: r * frac for n, r in ratios.items()})
        else:
            pruner.prune(target * (i + 1) / iterations)
        if pruner.flip_counter is not None:
            pruner.flip_counter.reset()
        if i == iterations - 1:
            accs_before = ft.evaluate(model, test)
        if per_stage > 0:
            ft.finetune(model, train, epochs=per_stage, lr=lr, pruner=pruner, schedule="cosine",
                        progress=progress)
    report = pruner.report()
    acc = ft.evaluate(model, test)
    model = pruner.finalize()
    acc_final = ft.evaluate(model, test)
    record["pruned"] = {
        "test_accuracy": acc_final, "test_accuracy_masked": acc,
        "test_accuracy_before_finetune": accs_before, "val_accuracy": ft.evaluate(model, val),
        "bops": report["bops"], "reduction": report["reduction"],
        "layers": {n: {k: v[k] for k in ("ratio", "weights", "live_weights", "dense_bops", "bops")}
                   for n, v in report["layers"].items()},
        "channels": {n: len(k) for n, k in pruner.prune_info.get("channels", {}).items()},
    }
    record["seconds"] = time.perf_counter() - t0
    if out is not None:
        save_pruned(out, model, ckpt, pruner.prune_info, {k: record[k] for k in ("baseline", "pruned", "budget")})
        record["output"] = str(out)
    if plot_dir is not None:
        from onebit.prune.plots import plot_pareto

        pts = [{"method": method, "granularity": granularity, "bops": report["bops"], "accuracy": acc_final}]
        record.setdefault("plots", []).append(str(plot_pareto(
            pts, Path(plot_dir) / "pareto.png", baseline={"bops": pruner.base_bops, "accuracy": base_acc})))
    return record
