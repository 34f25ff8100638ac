"""Accuracy of a ``.onebit`` model under bit flips of its stored weights, on the engine.

``study(model_path, dataset, flips=[1, 10, 100], mode="random", kinds=("binary",))`` returns
a JSON-able record: the clean accuracy, the number of flippable bits of every kind
(:mod:`onebit.robustness.sites`) and one row per (kind, flip count) with the accuracy of every
trial. Flip counts are nested: within one trial the model with ``n`` flips holds the flips of
every smaller count (faults accumulate; the progressive search adds one flip at a time).

- ``random``: uniformly chosen distinct bits of the kind, ``trials`` independent draws, each
  seeded by ``(seed, trial, kind)``.
- ``progressive``: the bit search of :mod:`onebit.robustness.progressive` on ``checkpoint``
  (the PyTorch model the file was exported from), attack batch = the first ``attack_batch``
  images of a seeded shuffle of the training split; binary weights only (thresholds and int8
  weights exist only in folded form in the file, not as parameters the search could use).
"""
from __future__ import annotations

import os
import time

import numpy as np

from onebit.robustness.sites import KINDS, RobustnessError, apply_flips, check_count, find_sites, random_order

MODES = ("random", "progressive")


def parse_kinds(kind: str) -> tuple[str, ...]:
    if kind == "all":
        return KINDS
    if kind not in KINDS:
        raise RobustnessError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)} or all")
    return (kind,)


def parse_flips(text) -> list[int]:
    """``"1,10,100"`` (or a list) -> sorted distinct non-negative counts."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        try:
            n = int(str(item).strip())
        except ValueError:
            raise RobustnessError(f"flip counts are non-negative integers separated by commas, got {text!r}") from None
        if n < 0:
            raise RobustnessError(f"flip counts must be >= 0, got {n}")
        out.append(n)
    if not out:
        raise RobustnessError("give at least one flip count")
    return sorted(set(out))


def test_split(dataset: str, limit: int | None, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` (default all) test images (uint8 NHWC) and labels of ``dataset``."""
    from onebit.data import load

    images, labels = load(dataset, "test", size=size) if size else load(dataset, "test")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return np.asarray(images), np.asarray(labels)


def _test_data(dataset: str, model, limit: int | None):
    shape = tuple(model.input_spec["shape"])
    images, labels = test_split(dataset, limit, shape[0] if dataset == "imagenette" else None)
    if tuple(images.shape[1:]) != shape:
        raise RobustnessError(f"{dataset} images are {tuple(images.shape[1:])}, the model expects {shape} (NHWC)")
    return images, labels


def _accuracy(data: bytes, images, labels, threads, isa) -> float:
    from onebit.runtime import Session

    return Session(data, threads=threads, isa=isa).evaluate(images, labels)


def study(model_path, dataset: str, flips, mode: str = "random", kinds=("binary",), seed: int = 0,
          trials: int = 3, limit: int | None = None, threads: int | None = None, isa: str | None = None,
          checkpoint=None, attack_batch: int = 128, progress=None) -> dict:
    from onebit.runtime import format as fmt

    if mode not in MODES:
        raise RobustnessError(f"unknown mode {mode!r}; use random or progressive")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise RobustnessError(f"trials must be a positive integer, got {trials!r}")
    flips = parse_flips(flips)
    kinds = tuple(kinds)
    for k in kinds:
        parse_kinds(k)
    if mode == "progressive":
        if checkpoint is None:
            raise RobustnessError("progressive mode searches on the PyTorch model: give --checkpoint, "
                                  "the .pt file the model was exported from")
        if kinds != ("binary",):
            raise RobustnessError("progressive mode flips binary weights only (thresholds and int8 "
                                  "weights are folded at export and are no parameters of the PyTorch model)")
    t0 = time.perf_counter()
    with open(model_path, "rb") as f:
        data = f.read()
    model = fmt.loads(data)
    images, labels = _test_data(dataset, model, limit)
    clean = _accuracy(data, images, labels, threads, isa)
    sites = {k: find_sites(data, k, model) for k in kinds}
    for k, s in sites.items():
        if s.count == 0 and len(kinds) == 1:
            raise RobustnessError(f"the model has no {k} bits to flip")
        if s.count:
            check_count(s, flips[-1])
    record = {
        "model": os.fspath(model_path), "dataset": dataset, "mode": mode, "seed": seed,
        "images": int(len(labels)), "clean_accuracy": clean, "flips": flips,
        "sites": {k: {"bits": s.count, "per_op": s.per_op()} for k, s in sites.items()},
        "rows": [],
    }
    if mode == "random":
        record["trials"] = trials
        for ki, k in enumerate(kinds):
            s = sites[k]
            if s.count == 0:
                continue
            accs = {n: [] for n in flips}
            redrawn = {n: [] for n in flips}
            for t in range(trials):
                order = random_order(s, flips[-1], seed, t, ki)
                for n in flips:
                    flipped, info = apply_flips(data, s, order, n)
                    accs[n].append(_accuracy(flipped, images, labels, threads, isa))
                    redrawn[n].append(info["redrawn"])
                    if progress is not None:
                        progress(1)
            for n in flips:
                record["rows"].append(_row(k, n, accs[n], clean, redrawn=int(sum(redrawn[n]))))
    else:
        record["rows"], record["search"] = _progressive(data, model, sites["binary"], dataset, flips, seed,
                                                        checkpoint, attack_batch, images, labels, clean,
                                                        threads, isa, progress)
        record["checkpoint"] = os.fspath(checkpoint)
    record["seconds"] = time.perf_counter() - t0
    return record


def _row(kind, n, accs, clean, **extra) -> dict:
    a = np.asarray(accs, dtype=np.float64)
    return {"kind": kind, "flips": n, "accuracy": float(a.mean()), "min": float(a.min()), "max": float(a.max()),
            "trials": [float(v) for v in a], "drop_pt": 100 * (clean - float(a.mean())), **extra}


def _progressive(data, model, sites, dataset, flips, seed, checkpoint, attack_batch, images, labels, clean,
                 threads, isa, progress):
    import torch

    from onebit.convert.export import to_bytes
    from onebit.prune.checkpoint import load_checkpoint
    from onebit.robustness import progressive as pbs

    if threads is not None:
        torch.set_num_threads(threads)
    net, ckpt = load_checkpoint(checkpoint)
    if ckpt["dataset"] != dataset:
        raise RobustnessError(f"--checkpoint {checkpoint} was trained on {ckpt['dataset']!r}, not {dataset!r}")
    base = to_bytes(net, dataset=dataset)
    pbs.check_same_model(base, data, f"--checkpoint {checkpoint}")
    if sites.count == 0:
        raise RobustnessError("the model has no binary bits to flip")
    size = tuple(model.input_spec["shape"])[0] if dataset == "imagenette" else None
    x, y = pbs.attack_batch(dataset, attack_batch, seed, size)
    searched = pbs.search(net, x, y, flips[-1], progress=progress)
    # the search modified net in place: rebuild the clean model to apply prefixes of the record
    net, _ = load_checkpoint(checkpoint)
    rows = []
    for n in flips:
        flipped_export = to_bytes(pbs.apply(net, searched[:n]), dataset=dataset)
        flipped = pbs.file_flips(base, flipped_export, data, sites, n)
        rows.append(_row("binary", n, [_accuracy(flipped, images, labels, threads, isa)], clean,
                         attack_loss=searched[n - 1]["loss"] if n else None))
    return rows, {"attack_batch": int(len(y)), "flips": searched}
