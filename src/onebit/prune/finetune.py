"""Data, evaluation and the short fine-tuning loop used around pruning, plus the iterative
prune-and-fine-tune schedule.

Validation data for pruning decisions (sensitivity curves) is the *tail* of the training split
(``val_size`` samples; onebit.data interleaves classes, so the tail is class-balanced) and the
fine-tuning loop trains on the rest, so the test split is only used for reported accuracies.
The loop is the project's recipe in miniature: Adam, cross-entropy, latent weights clipped to
[-1, 1] after every step (``onebit.nn.clip_latent_weights``); the pruner (given the optimizer)
keeps pruned latents and their Adam moments at exactly 0.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _loader(dataset: str, split: str, batch_size: int, *, start=None, stop=None, train=False,
            seed=0, size=None, root=None):
    from onebit.data import info, load
    from onebit.data.batches import Loader

    ds = info(dataset, size)
    images, labels = load(ds.name, split, root=root, size=size)
    images, labels = images[start:stop], labels[start:stop]
    if len(labels) == 0:
        raise ValueError(f"empty {split} slice [{start}:{stop}] of {dataset}")
    return Loader(images, labels, ds, batch_size, shuffle=train, train=train, seed=seed)


def validation_loader(dataset: str, val_size: int = 5000, batch_size: int = 500, **kw):
    """The last ``val_size`` samples of the training split, no augmentation."""
    return _loader(dataset, "train", batch_size, start=-int(val_size), **kw)


def train_loader(dataset: str, val_size: int = 5000, batch_size: int = 128, *, limit=None,
                 seed=0, **kw):
    """The training split minus the validation tail (first ``limit`` samples if given)."""
    from onebit.data import load

    n = len(load(dataset, "train", size=kw.get("size"), root=kw.get("root"))[1]) - int(val_size)
    stop = n if limit is None else min(n, int(limit))
    return _loader(dataset, "train", batch_size, stop=stop, train=True, seed=seed, **kw)


def test_loader(dataset: str, batch_size: int = 500, *, limit=None, **kw):
    return _loader(dataset, "test", batch_size, stop=limit, **kw)


@torch.no_grad()
def evaluate(model: nn.Module, loader) -> float:
    """Top-1 accuracy (fraction) of ``model`` in eval mode over ``loader``."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    for x, y in loader:
        correct += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
        total += int(y.numel())
    model.train(was)
    if total == 0:
        raise ValueError("evaluation loader is empty")
    return correct / total


def _clip_latents(model: nn.Module) -> None:
    from onebit.nn import clip_latent_weights

    clip_latent_weights(model)


def finetune(model: nn.Module, loader, *, epochs: float = 1.0, lr: float = 1e-4, pruner=None,
             flip_counter=None, max_steps: int | None = None, schedule: str = "constant",
             progress: bool = False) -> dict:
    """Train ``model`` for ``epochs`` (fractions allowed) with Adam; ``schedule`` ``"constant"``
    or ``"cosine"`` (``lr * (1 + cos(pi * t / T)) / 2``, annealed to 0 over the run).

    ``pruner``: a prepared :class:`onebit.prune.Pruner`; its ``step()`` runs after every
    optimizer step (schedules, flip counting) and its masks are enforced on the optimizer.
    ``flip_counter``: a :class:`onebit.prune.FlipCounter` updated after every step.
    """
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    hook = None
    if pruner is not None:
        pruner.optimizer = optimizer
        hook = optimizer.register_step_post_hook(lambda *_: pruner._enforce())
    total = int(round(epochs * len(loader))) if max_steps is None else int(max_steps)
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    sched = None
    if schedule == "cosine" and total > 0:
        sched = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total)))
    device = next(model.parameters()).device
    model.train()
    steps, loss_sum, t0 = 0, 0.0, time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="fine-tune", leave=False)
    epoch = 0
    try:
        while steps < total:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            for x, y in loader:
                if steps >= total:
                    break
                loss = F.cross_entropy(model(x.to(device)), y.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if sched is not None:
                    sched.step()
                _clip_latents(model)
                if flip_counter is not None and (pruner is None or pruner.flip_counter is not flip_counter):
                    flip_counter.update()
                if pruner is not None:
                    pruner.step()
                steps += 1
                loss_sum += float(loss.detach())
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            epoch += 1
    finally:
        if bar is not None:
            bar.close()
        if hook is not None:
            hook.remove()
        if pruner is not None:
            pruner.optimizer = None
    model.eval()
    return {"steps": steps, "mean_loss": loss_sum / max(1, steps), "seconds": time.perf_counter() - t0}


def iterative_prune(pruner, targets: Sequence[float], finetune_fn: Callable[[nn.Module], object],
                    evaluate_fn: Callable[[nn.Module], float] | None = None) -> list[dict]:
    """Iterative prune-and-fine-tune: for each target (increasing fractions of binary ops
    removed) prune with the prepared ``pruner`` (masks only grow), then ``finetune_fn(model)``;
    for flip-frequency pruning the flip counter restarts after each pruning so the next
    interval's flips guide the next cut (Li & Ren 2020). Returns one record per stage."""
    history = []
    last = 0.0
    for t in targets:
        if t < last:
            raise ValueError(f"targets must not decrease, got {list(targets)}")
        last = t
        report = pruner.prune(t)
        if pruner.flip_counter is not None:
            pruner.flip_counter.reset()
        finetune_fn(pruner.model)
        rec = {"target": t, "reduction": report["reduction"], "bops": report["bops"]}
        if evaluate_fn is not None:
            rec["accuracy"] = evaluate_fn(pruner.model)
        history.append(rec)
    return history
