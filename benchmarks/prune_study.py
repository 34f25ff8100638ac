"""Pruning study for any zoo model and dataset: unpruned baselines (>= 2 seeds, for the noise)
and method x granularity x target (fewer binary ops) with one fixed fine-tuning budget.

Phases (each writes JSON under --out; the table phase reads them all)::

    # baselines: train here, or register a checkpoint trained by `onebit train`
    python benchmarks/prune_study.py baseline --model cifar-binarynet --dataset cifar10 \\
        --width 0.125 --epochs 2 --batch-size 128 --lr 3e-3 --seed 1 --out runs/prune_cifar
    python benchmarks/prune_study.py baseline --checkpoint CKPT.pt --seed 0 --out runs/prune_cifar
    # the grid (model, dataset and size come from the baseline checkpoint)
    python benchmarks/prune_study.py grid --granularity channel --finetune-epochs 0.5 --out runs/prune_cifar
    python benchmarks/prune_study.py table --out runs/prune_cifar   # markdown + Pareto PNG

Methods: ``none`` (no pruning, same fine-tuning: the control), ``latent`` (|w|, uniform
per-layer ratio), ``latent-sens`` (|w| with per-layer ratios from the sensitivity sweep on the
validation tail of the training split and the greedy allocator; ``latent-sens-dp``: the same
curves, dynamic-programming allocator), ``flip`` (flip counts over a
short training interval; frequently flipping weights pruned first, per-layer ratio proportional
to the fraction of insensitive weights: Li & Ren 2020), ``flip-rare`` (the same counts and
allocation, rarely flipping weights pruned first), ``random`` (uniform ratio),
``latent-gradual`` (|w|, uniform ratio, pruned during the fine-tune on the cubic ramp of Zhu &
Gupta from step 0 to --gradual-end of the steps, 10 pruning events, instead of in one shot
before it; "acc. before fine-tune" is then the unpruned model's). Every record holds
the budget, seed, test accuracy before/after fine-tuning, binary ops, packed model size
(``onebit.summary``), wall and CPU seconds. The validation tail (last --val-size training
images) is never fine-tuned on; accuracies are on the whole test split. One torch thread.
``--tag`` keeps several budgets side by side (``grid_<granularity>_<tag>.json``).

Seeds: ``--ft-seed S`` (default 1, the loader seed of the first studies) repeats a point with
another fine-tune data order and augmentation (and flip-counting interval, and random mask:
``random`` uses mask seed ``--seed + S - 1``); records keep their ``ft_seed`` and a grid file
holds several seeds side by side (``--append``). The table shows, per (method, target), the
mean over fine-tune seeds with its spread (max - min), "within noise" (mean >= seed-0 baseline
- baseline seed spread) and "beats random" (yes: every seed of the method above every seed of
``random`` at the same target, with >= 2 seeds of each; no: every seed below; overlap:
otherwise). A grid file without a ``none`` record takes the control of another grid file in
the same directory with the same baseline seed, fine-tune steps, lr and tag (the control does
not depend on the granularity).
"""
from __future__ import annotations

import argparse
import copy
import fcntl
import json
import os
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _records import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("none", "latent", "latent-sens", "latent-sens-dp", "latent-gradual", "flip", "flip-rare", "random")


def _env():
    if not os.environ.get("ONEBIT_DATA") and (ROOT.parent / "shared" / "datasets").is_dir():
        os.environ["ONEBIT_DATA"] = str(ROOT.parent / "shared" / "datasets")
    torch.set_num_threads(1)


class Clock:
    """Wall and CPU (user + system of this process) seconds since creation."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> dict:
        return {"wall_seconds": time.perf_counter() - self.wall, "cpu_seconds": time.process_time() - self.cpu}


def model_size(model) -> int:
    """Packed model size in bytes (``onebit.summary`` convention: masks do not shrink it)."""
    from onebit import summary

    return int(summary(model).totals["size_bytes"])


def _time_log_cpu(path) -> float | None:
    """User + system seconds from a ``/usr/bin/time -v`` log, if any."""
    if not path or not Path(path).exists():
        return None
    text = Path(path).read_text(errors="replace")
    vals = [re.search(rf"{k} time \(seconds\): ([\d.]+)", text) for k in ("User", "System")]
    return sum(float(v.group(1)) for v in vals) if all(vals) else None


def baseline(args):
    from onebit.prune import count_bops
    from onebit.prune import finetune as ft
    from onebit.prune.checkpoint import load_checkpoint

    out = Path(args.out)
    ckpt_path = out / f"baseline_s{args.seed}.pt"
    clock = Clock()
    rec = {"seed": args.seed, "command": " ".join(sys.argv), "machine": machine()}
    if args.checkpoint:
        # register a checkpoint trained elsewhere (e.g. `onebit train ... --out`) as this seed
        if Path(args.checkpoint).resolve() != ckpt_path.resolve():
            ckpt_path.write_bytes(Path(args.checkpoint).read_bytes())
        train_json = json.loads(Path(args.train_json).read_text()) if args.train_json else {}
        rec.update(source=str(args.checkpoint), train_config=train_json.get("config"),
                   train_seconds=train_json.get("train_seconds"),
                   wall_seconds=train_json.get("wall_seconds"), cpu_seconds=_time_log_cpu(args.time_log))
    else:
        from onebit.data import load
        from onebit.train import TrainConfig, train

        n_train = len(load(args.dataset, "train", size=args.size)[1])
        limit = args.limit_train or n_train - args.val_size
        res = train(TrainConfig(model=args.model, dataset=args.dataset, epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, out=str(ckpt_path), width=args.width,
                                size=args.size, seed=args.seed, threads=1, limit_train=limit,
                                limit_test=args.limit_test, progress=False, device="cpu"))
        rec.update(train_config={"model": args.model, "dataset": args.dataset, "epochs": args.epochs,
                                 "batch_size": args.batch_size, "lr": args.lr, "width": args.width,
                                 "size": args.size, "limit_train": limit},
                   train_seconds=res.train_seconds, **clock.seconds())
    model, ckpt = load_checkpoint(ckpt_path)
    size = (ckpt.get("train_config") or {}).get("size")
    rec.update(model_config=ckpt["model_config"], dataset=ckpt["dataset"], size=size, limit_test=args.limit_test,
               test_accuracy=ft.evaluate(model, ft.test_loader(ckpt["dataset"], limit=args.limit_test, size=size)),
               bops=count_bops(model).dense_bops, size_bytes=model_size(model), checkpoint=str(ckpt_path))
    (out / f"baseline_s{args.seed}.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(json.dumps({k: rec[k] for k in ("seed", "test_accuracy", "bops", "size_bytes")}))


def _cached_curves(out: Path, granularity: str, args):
    """Sensitivity curves of an earlier grid on the same baseline, granularity and sweep."""
    for path in sorted(out.glob(f"grid_{granularity}*.json")):
        d = json.loads(path.read_text())
        b = d.get("budget", {})
        if (b.get("seed"), b.get("val_size"), b.get("sweep_size")) != (args.seed, args.val_size, args.sweep_size):
            continue
        for r in d["records"]:
            if r["method"].startswith("latent-sens") and r["granularity"] == granularity and "sensitivity" in r:
                return r["sensitivity"], r.get("sweep_seconds")
    return None, None


def grid(args):
    from onebit.data import load
    from onebit.prune import FlipCounter, Pruner, binary_layers, count_bops
    from onebit.prune import finetune as ft
    from onebit.prune.checkpoint import load_checkpoint
    from onebit.prune.sensitivity import SensitivityCurves, allocate, sweep

    out = Path(args.out)
    torch.manual_seed(0)
    base, ckpt = load_checkpoint(out / f"baseline_s{args.seed}.pt")
    dataset = ckpt["dataset"]
    size = (ckpt.get("train_config") or {}).get("size")
    batch = args.batch_size or (ckpt.get("train_config") or {}).get("batch_size") or 128
    test = ft.test_loader(dataset, limit=args.limit_test, size=size)
    test_before = test if args.before_limit is None else ft.test_loader(dataset, limit=args.before_limit, size=size)
    n_train = len(load(dataset, "train", size=size)[1])
    sweep_stop = None if args.sweep_size >= args.val_size else n_train - args.val_size + args.sweep_size
    val = ft._loader(dataset, "train", 500, start=n_train - args.val_size, stop=sweep_stop, size=size)
    train = ft.train_loader(dataset, args.val_size, batch, seed=args.ft_seed, size=size)
    steps = args.finetune_steps if args.finetune_steps is not None else int(round(args.finetune_epochs * len(train)))
    g = args.granularity
    path = out / (f"grid_{g}_{args.tag}.json" if args.tag else f"grid_{g}.json")
    records = []
    if args.append and path.exists():
        # continue an interrupted grid: keep its finished runs (same checkpoint and budget)
        records = json.loads(path.read_text())["records"]
    done = {(r["method"], r["target"], r.get("ft_seed", 1)) for r in records}
    base_json = out / f"baseline_s{args.seed}.json"
    known = json.loads(base_json.read_text()) if base_json.exists() else {}
    # the baseline phase evaluated the same checkpoint on the whole test split already
    base_acc = known["test_accuracy"] if args.limit_test is None and known.get("limit_test") is None \
        and "test_accuracy" in known \
        else ft.evaluate(base, test)
    dense = count_bops(base).dense_bops
    budget = dict(vars(args), finetune_steps=steps, batch_size=batch, train_images=len(train.labels),
                  steps_per_epoch=len(train), dataset=dataset, size=size, model_config=ckpt["model_config"])

    def save():
        # --append: merge with the file as it is now (another process may have added points to
        # it since we read it), under a lock, and replace it atomically
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = records
            if args.append and path.exists():
                key = lambda r: (r["method"], r["target"], r.get("ft_seed", 1))  # noqa: E731
                mine = {key(r): r for r in records}
                on_disk = json.loads(path.read_text())["records"]
                seen = {key(r) for r in on_disk}
                # file order (ours where we have the same point), then our new points
                merged = [mine.get(key(r), r) for r in on_disk] + [r for r in records if key(r) not in seen]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({
                "baseline_test_accuracy": base_acc, "baseline_bops": dense, "baseline_size_bytes": model_size(base),
                "budget": budget, "machine": machine(), "command": " ".join(sys.argv), "records": merged},
                indent=1) + "\n")
            os.replace(tmp, path)

    def run(method, target, model, make_pruner, extra=None):
        clock = Clock()
        pruner = make_pruner(model) if make_pruner else None
        acc0 = ft.evaluate(model, test_before)
        st = ft.finetune(model, train, max_steps=steps, lr=args.ft_lr, pruner=pruner, schedule="cosine")
        if pruner is not None:
            model = pruner.finalize()
        acc = ft.evaluate(model, test)
        bops = count_bops(model).bops
        rec = {"method": method, "granularity": g, "target": target, "bops": bops, "dense_bops": dense,
               "reduction": 1 - bops / dense, "size_bytes": model_size(model),
               "test_accuracy_before_finetune": acc0, "test_accuracy": acc, "finetune_steps": st["steps"],
               "finetune_epochs": st["steps"] / len(train), "seed": args.seed, "ft_seed": args.ft_seed,
               "ratios": pruner.achieved if pruner is not None else {},
               "live_binary_weights": sum(int(m.weight_mask.sum()) if m.weight_mask is not None
                                          else m.weight.numel() for _, m in binary_layers(model)),
               **clock.seconds(), **(extra or {})}
        rec["seconds"] = rec["wall_seconds"]
        records.append(rec)
        print(json.dumps({k: rec[k] for k in ("method", "granularity", "target", "reduction",
                                                "test_accuracy_before_finetune", "test_accuracy",
                                                "wall_seconds", "cpu_seconds")}), flush=True)
        save()

    flip_cache = {}

    def flip_counts():
        # one counting interval (a short stretch of training from the baseline) for flip and flip-rare
        if not flip_cache:
            clock = Clock()
            source = copy.deepcopy(base)
            counter = FlipCounter(source)
            ft.finetune(source, train, max_steps=args.flip_steps, lr=args.ft_lr, flip_counter=counter)
            flip_cache.update(source=source, counter=counter, seconds=clock.seconds())
        return flip_cache["source"], flip_cache["counter"], flip_cache["seconds"]

    for method in args.methods:
        if method == "none":
            if ("none", 0.0, args.ft_seed) not in done:
                run("none", 0.0, copy.deepcopy(base), None)
            continue
        todo = [t for t in args.targets if (method, t, args.ft_seed) not in done]
        if not todo:
            continue
        source, counter, curves, extra = base, None, None, {}
        if method in ("flip", "flip-rare"):
            source, counter, secs = flip_counts()
            extra = {"flip_steps": args.flip_steps, "flip_order": "rare" if method == "flip-rare" else "frequent",
                     "insensitive_fraction": counter.insensitive_fraction(),
                     "flip_interval_cpu_seconds": secs["cpu_seconds"]}
        if method in ("latent-sens", "latent-sens-dp"):
            cached, secs = _cached_curves(out, g, args)
            if cached is None:
                clock = Clock()
                curves = sweep(base, lambda m: ft.evaluate(m, val), method="latent", granularity=g)
                cached, secs = curves.to_dict(), clock.seconds()["cpu_seconds"]
            curves = SensitivityCurves.from_dict(cached)
            extra = {"sensitivity": cached, "sweep_seconds": secs}
        for target in todo:
            model = copy.deepcopy(source)
            fc = None
            if counter is not None:
                fc = FlipCounter(model)
                fc.load_state_dict(counter.state_dict())

            def make(m, method=method, target=target, fc=fc):
                score = {"latent-sens": "latent", "latent-sens-dp": "latent", "flip-rare": "flip",
                         "latent-gradual": "latent"}.get(method, method)
                if method == "latent-gradual":
                    # pruned inside the fine-tune: cubic ramp to the target, then recovery
                    end = max(2, int(round(args.gradual_end * steps)))
                    return Pruner(m, score, g, target, schedule="gradual", begin_step=0, end_step=end,
                                  frequency=max(1, end // 10), seed=args.seed).prepare()
                p = Pruner(m, score, g, target, flip_counter=fc, seed=args.seed + args.ft_seed - 1,
                           flip_order="rare" if method == "flip-rare" else "frequent").prepare()
                if curves is not None:
                    solver = "dp" if method == "latent-sens-dp" else "greedy"
                    p.prune(ratios=allocate(curves, target, p.reduction_fn(), solver=solver)["ratios"])
                else:
                    p.prune()
                return p

            if method == "latent-gradual":
                extra = {"gradual_end_step": max(2, int(round(args.gradual_end * steps)))}
            run(method, target, model, make, extra)


def _fmt_time(s):
    return "-" if s is None else (f"{s / 60:.1f} min" if s >= 600 else f"{s:.0f} s")


def _groups(records):
    """Records grouped by (method, target), in first-seen method order then target."""
    order = list(dict.fromkeys(r["method"] for r in records))
    groups: dict = {}
    for r in records:
        groups.setdefault((r["method"], r["target"]), []).append(r)
    return [(k, groups[k]) for k in sorted(groups, key=lambda k: (order.index(k[0]), k[1]))]


def _mean(xs):
    return sum(xs) / len(xs)


def _beats(mine: list[float], rand: list[float]) -> str:
    """yes / no only when the seeds separate (>= 2 seeds each), else overlap."""
    if len(mine) < 2 or len(rand) < 2:
        return "1 seed"
    if min(mine) > max(rand):
        return "yes"
    if max(mine) < min(rand):
        return "no"
    return "overlap"


def _control_key(d: dict):
    b = d["budget"]
    return (b.get("seed"), b.get("finetune_steps"), b.get("ft_lr"), b.get("tag", ""))


def table(args):
    out = Path(args.out)
    b = [json.loads(p.read_text()) for p in sorted(out.glob("baseline_s*.json"))
         if re.fullmatch(r"baseline_s\d+\.json", p.name)]
    accs = [r["test_accuracy"] for r in b]
    spread = max(accs) - min(accs) if len(accs) > 1 else float("nan")
    lines = ["Unpruned baselines: " + ", ".join(
        f"seed {r['seed']} {100 * r['test_accuracy']:.2f}%" + (f" ({r['size_bytes'] / 1024:.1f} KiB packed)"
                                                               if "size_bytes" in r else "") for r in b)
        + (f"; mean {100 * _mean(accs):.2f}%" if len(accs) > 2 else "")
        + f"; noise (spread over seeds) {100 * spread:.2f} points.", ""]
    grids = [(path, json.loads(path.read_text())) for path in sorted(out.glob("grid_*.json"))]
    controls: dict = {}
    for _, d in grids:  # the control does not depend on the granularity: share it within a budget
        recs = [r for r in d["records"] if r["method"] == "none"]
        if recs:
            controls.setdefault(_control_key(d), []).extend(recs)
    pts = []
    summary = []
    for path, d in grids:
        bud = d["budget"]
        ref = d["baseline_test_accuracy"]
        control = [r for r in d["records"] if r["method"] == "none"]
        borrowed = not control and _control_key(d) in controls
        control = control or controls.get(_control_key(d), [])
        records = (control if borrowed else []) + d["records"]
        ctrl = {r.get("ft_seed", 1): r["test_accuracy"] for r in control}
        rand: dict = {}
        for r in d["records"]:
            if r["method"] == "random":
                rand.setdefault(r["target"], []).append(r["test_accuracy"])
        epochs = (f" = {bud['finetune_steps'] / bud['steps_per_epoch']:.2f} epoch"
                  if bud.get("steps_per_epoch") else "")
        ft_budget = f"{bud['finetune_steps']} steps{epochs} of batch {bud.get('batch_size', 128)}"
        before = (f"; accuracy before fine-tuning on the first {bud['before_limit']} test images"
                  if bud.get("before_limit") else "")
        seeds = sorted({r.get("ft_seed", 1) for r in d["records"]})
        lines += [f"`{path.name}`: granularity `{path.stem.split('_')[1]}`, pruned from seed {bud['seed']} "
                  f"(test {100 * ref:.2f}%); fine-tune {ft_budget}, Adam lr {bud['ft_lr']} cosine to 0; "
                  f"flip interval {bud['flip_steps']} steps at constant lr {bud['ft_lr']}{before}; "
                  f"fine-tune seeds {', '.join(map(str, seeds))}"
                  + (" (control `none` from another granularity's file, same budget)" if borrowed else "")
                  + ". Accuracies: mean over the fine-tune seeds, +- spread (max - min) when > 1 seed:", "",
                  "| method | target | binary ops (M) | fewer bops | size (KiB) | acc. before fine-tune (%) "
                  "| acc. after (%) | seeds | vs baseline | vs control | vs random | beats random | within noise "
                  "| wall | CPU |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for (method, target), rs in _groups(records):
            after = [r["test_accuracy"] for r in rs]
            m = _mean(after)
            delta = m - ref
            ok = "n/a" if spread != spread else ("yes" if delta >= -spread else "no")
            # vs control: the control's mean over the same fine-tune seeds where it has them
            same = [ctrl[r.get("ft_seed", 1)] for r in rs if r.get("ft_seed", 1) in ctrl]
            vs = "" if not ctrl else f"{100 * (m - _mean(same or list(ctrl.values()))):+.2f}"
            r0 = rs[0]
            sz = f"{r0['size_bytes'] / 1024:.1f}" if "size_bytes" in r0 else "-"
            vr = bt = ""
            if target in rand and method not in ("none", "random"):
                vr = f"{100 * (m - _mean(rand[target])):+.2f}"
                bt = _beats(after, rand[target])
            acc = f"{100 * m:.2f}" + (f" +- {100 * (max(after) - min(after)):.2f}" if len(rs) > 1 else "")
            cpu = [r.get("cpu_seconds") for r in rs if r.get("cpu_seconds") is not None]
            walls = [r.get("wall_seconds", r.get("seconds")) for r in rs]
            walls = [w for w in walls if w is not None]
            lines.append(f"| {method} | {target:.0%} | {r0['bops'] / 1e6:.2f} | {r0['reduction']:.1%} | {sz} | "
                         f"{100 * _mean([r['test_accuracy_before_finetune'] for r in rs]):.2f} | {acc} | "
                         f"{len(rs)} | {100 * delta:+.2f} | {vs} | {vr} | {bt} | {ok} | "
                         f"{_fmt_time(_mean(walls) if walls else None)} | {_fmt_time(_mean(cpu) if cpu else None)} |")
            summary.append({"file": path.name, "granularity": r0["granularity"], "method": method,
                            "target": target, "reduction": r0["reduction"], "bops": r0["bops"],
                            "size_bytes": r0.get("size_bytes"), "seeds": [r.get("ft_seed", 1) for r in rs],
                            "accuracies": after, "mean": m, "vs_baseline": delta, "within_noise": ok,
                            "vs_random": vr, "beats_random": bt})
            if method != "none":
                pts.append({"method": method, "granularity": r0["granularity"], "bops": r0["bops"],
                            "accuracy": m})
        lines.append("")
    text = "\n".join(lines)
    print(text)
    (out / "table.md").write_text(text + "\n")
    (out / "table.json").write_text(json.dumps({"baselines": {r["seed"]: r["test_accuracy"] for r in b},
                                                "noise": spread, "rows": summary}, indent=1) + "\n")
    if pts:
        from onebit.prune.plots import plot_pareto, plot_sensitivity
        from onebit.prune.sensitivity import SensitivityCurves

        dense = grids[0][1]["records"][0]["dense_bops"]
        plot_pareto(pts, out / "pareto.png", baseline={"bops": dense, "accuracy": accs})
        seen = set()
        for _, d in grids:
            for r in d["records"]:
                if "sensitivity" in r and r["granularity"] not in seen:
                    seen.add(r["granularity"])
                    plot_sensitivity(SensitivityCurves.from_dict(r["sensitivity"]),
                                     out / f"sensitivity_{r['granularity']}.png")


def parser(defaults: dict | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["baseline", "grid", "table"])
    ap.add_argument("--out", default=str(ROOT / "runs" / "prune_study"))
    ap.add_argument("--seed", type=int, default=0, help="baseline seed (grid: the baseline pruned from)")
    # baseline phase
    ap.add_argument("--model", default="mnist-small")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--size", type=int, default=None, help="input resolution (Imagenette)")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--limit-train", type=int, default=None,
                    help="baseline: first N images (default: all but the validation tail)")
    ap.add_argument("--checkpoint", default=None, help="baseline: register this trained checkpoint")
    ap.add_argument("--train-json", default=None, help="baseline --checkpoint: its `onebit train --json` record")
    ap.add_argument("--time-log", default=None, help="baseline --checkpoint: its `/usr/bin/time -v` log (CPU s)")
    # grid phase
    ap.add_argument("--batch-size", type=int, default=None,
                    help="baseline: training batch (default 128); grid: fine-tuning batch (default: the baseline's)")
    ap.add_argument("--val-size", type=int, default=5000)
    ap.add_argument("--granularity", default="channel", choices=["weight", "word", "block", "channel"])
    ap.add_argument("--methods", nargs="+", default=["none", "latent", "latent-sens", "flip", "random"],
                    choices=METHODS)
    ap.add_argument("--targets", nargs="+", type=float, default=[0.2, 0.3, 0.4, 0.5])
    ap.add_argument("--finetune-steps", type=int, default=None)
    ap.add_argument("--finetune-epochs", type=float, default=None, help="used when --finetune-steps is not given")
    ap.add_argument("--ft-lr", type=float, default=2e-4, help="peak Adam lr, cosine-annealed to 0")
    ap.add_argument("--flip-steps", type=int, default=100)
    ap.add_argument("--sweep-size", type=int, default=2000, help="validation images per sensitivity point")
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--before-limit", type=int, default=None,
                    help="grid: accuracy before fine-tuning on the first N test images only (saves time)")
    ap.add_argument("--tag", default="", help="grid file suffix: grid_<granularity>_<tag>.json")
    ap.add_argument("--ft-seed", type=int, default=1,
                    help="grid: fine-tune data order/augmentation seed (also flip interval, random masks)")
    ap.add_argument("--gradual-end", type=float, default=0.5,
                    help="latent-gradual: the ramp ends at this fraction of the fine-tune steps")
    ap.add_argument("--append", action="store_true", help="grid: keep the records already in the grid file")
    ap.set_defaults(**(defaults or {}))
    return ap


def main(defaults: dict | None = None, argv=None):
    args = parser(defaults).parse_args(argv)
    if args.phase == "grid" and args.finetune_steps is None and args.finetune_epochs is None:
        args.finetune_steps = 100
    if args.ft_seed < 0:
        raise SystemExit(f"--ft-seed must be >= 0, got {args.ft_seed}")
    if not 0.0 < args.gradual_end <= 1.0:
        raise SystemExit(f"--gradual-end must be in (0, 1], got {args.gradual_end}")
    if args.phase == "baseline" and args.batch_size is None:
        args.batch_size = 128
    _env()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    {"baseline": baseline, "grid": grid, "table": table}[args.phase](args)


if __name__ == "__main__":
    main()
