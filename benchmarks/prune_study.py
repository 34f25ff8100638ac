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
allocation, rarely flipping weights pruned first), ``random`` (uniform ratio). Every record holds
the budget, seed, test accuracy before/after fine-tuning, binary ops, packed model size
(``onebit.summary``), wall and CPU seconds. The validation tail (last --val-size training
images) is never fine-tuned on; accuracies are on the whole test split. One torch thread.
``--tag`` keeps several budgets side by side (``grid_<granularity>_<tag>.json``).
"""
from __future__ import annotations

import argparse
import copy
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
METHODS = ("none", "latent", "latent-sens", "latent-sens-dp", "flip", "flip-rare", "random")


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
    train = ft.train_loader(dataset, args.val_size, batch, seed=1, size=size)
    steps = args.finetune_steps if args.finetune_steps is not None else int(round(args.finetune_epochs * len(train)))
    g = args.granularity
    path = out / (f"grid_{g}_{args.tag}.json" if args.tag else f"grid_{g}.json")
    records = []
    if args.append and path.exists():
        # continue an interrupted grid: keep its finished runs (same checkpoint and budget)
        records = json.loads(path.read_text())["records"]
    done = {(r["method"], r["target"]) for r in records}
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
        path.write_text(json.dumps({
            "baseline_test_accuracy": base_acc, "baseline_bops": dense, "baseline_size_bytes": model_size(base),
            "budget": budget, "machine": machine(), "command": " ".join(sys.argv), "records": records},
            indent=1) + "\n")

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
               "finetune_epochs": st["steps"] / len(train), "seed": args.seed,
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
            if ("none", 0.0) not in done:
                run("none", 0.0, copy.deepcopy(base), None)
            continue
        todo = [t for t in args.targets if (method, t) not in done]
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
                score = {"latent-sens": "latent", "latent-sens-dp": "latent", "flip-rare": "flip"}.get(method, method)
                p = Pruner(m, score, g, target, flip_counter=fc, seed=args.seed,
                           flip_order="rare" if method == "flip-rare" else "frequent").prepare()
                if curves is not None:
                    solver = "dp" if method == "latent-sens-dp" else "greedy"
                    p.prune(ratios=allocate(curves, target, p.reduction_fn(), solver=solver)["ratios"])
                else:
                    p.prune()
                return p

            run(method, target, model, make, extra)


def _fmt_time(s):
    return "-" if s is None else (f"{s / 60:.1f} min" if s >= 600 else f"{s:.0f} s")


def table(args):
    out = Path(args.out)
    b = [json.loads(p.read_text()) for p in sorted(out.glob("baseline_s*.json"))
         if re.fullmatch(r"baseline_s\d+\.json", p.name)]
    accs = [r["test_accuracy"] for r in b]
    spread = max(accs) - min(accs) if len(accs) > 1 else float("nan")
    lines = ["Unpruned baselines: " + ", ".join(
        f"seed {r['seed']} {100 * r['test_accuracy']:.2f}%" + (f" ({r['size_bytes'] / 1024:.1f} KiB packed)"
                                                               if "size_bytes" in r else "") for r in b)
        + f"; noise (spread over seeds) {100 * spread:.2f} points.", ""]
    pts = []
    for path in sorted(out.glob("grid_*.json")):
        d = json.loads(path.read_text())
        bud = d["budget"]
        ref = d["baseline_test_accuracy"]
        control = [r for r in d["records"] if r["method"] == "none"]
        ctrl = control[0]["test_accuracy"] if control else None
        rand = {r["target"]: r["test_accuracy"] for r in d["records"] if r["method"] == "random"}
        epochs = (f" = {bud['finetune_steps'] / bud['steps_per_epoch']:.2f} epoch"
                  if bud.get("steps_per_epoch") else "")
        ft_budget = f"{bud['finetune_steps']} steps{epochs} of batch {bud.get('batch_size', 128)}"
        before = (f"; accuracy before fine-tuning on the first {bud['before_limit']} test images"
                  if bud.get("before_limit") else "")
        lines += [f"`{path.name}`: granularity `{path.stem.split('_')[1]}`, pruned from seed {bud['seed']} "
                  f"(test {100 * ref:.2f}%); fine-tune {ft_budget}, Adam lr {bud['ft_lr']} cosine to 0; "
                  f"flip interval {bud['flip_steps']} steps at constant lr {bud['ft_lr']}{before}:", "",
                  "| method | target | binary ops (M) | fewer bops | size (KiB) | acc. before fine-tune (%) "
                  "| acc. after (%) | vs baseline | vs control | vs random | within noise | wall | CPU |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        order = list(dict.fromkeys(r["method"] for r in d["records"]))
        for r in sorted(d["records"], key=lambda r: (order.index(r["method"]), r["target"])):
            delta = r["test_accuracy"] - ref
            ok = "n/a" if spread != spread else ("yes" if delta >= -spread else "no")
            vs = "" if ctrl is None else f"{100 * (r['test_accuracy'] - ctrl):+.2f}"
            sz = f"{r['size_bytes'] / 1024:.1f}" if "size_bytes" in r else "-"
            vr = (f"{100 * (r['test_accuracy'] - rand[r['target']]):+.2f}"
                  if r["target"] in rand and r["method"] not in ("none", "random") else "")
            lines.append(f"| {r['method']} | {r['target']:.0%} | {r['bops'] / 1e6:.2f} | {r['reduction']:.1%} | {sz} | "
                         f"{100 * r['test_accuracy_before_finetune']:.2f} | {100 * r['test_accuracy']:.2f} | "
                         f"{100 * delta:+.2f} | {vs} | {vr} | {ok} | {_fmt_time(r.get('wall_seconds', r.get('seconds')))} | "
                         f"{_fmt_time(r.get('cpu_seconds'))} |")
            if r["method"] != "none":
                pts.append({"method": r["method"], "granularity": r["granularity"], "bops": r["bops"],
                            "accuracy": r["test_accuracy"]})
        lines.append("")
    text = "\n".join(lines)
    print(text)
    (out / "table.md").write_text(text + "\n")
    if pts:
        from onebit.prune.plots import plot_pareto, plot_sensitivity
        from onebit.prune.sensitivity import SensitivityCurves

        dense = json.loads(next(out.glob("grid_*.json")).read_text())["records"][0]["dense_bops"]
        plot_pareto(pts, out / "pareto.png", baseline={"bops": dense, "accuracy": accs})
        seen = set()
        for path in sorted(out.glob("grid_*.json")):
            for r in json.loads(path.read_text())["records"]:
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
    ap.add_argument("--append", action="store_true", help="grid: keep the records already in the grid file")
    ap.set_defaults(**(defaults or {}))
    return ap


def main(defaults: dict | None = None, argv=None):
    args = parser(defaults).parse_args(argv)
    if args.phase == "grid" and args.finetune_steps is None and args.finetune_epochs is None:
        args.finetune_steps = 100
    if args.phase == "baseline" and args.batch_size is None:
        args.batch_size = 128
    _env()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    {"baseline": baseline, "grid": grid, "table": table}[args.phase](args)


if __name__ == "__main__":
    main()
