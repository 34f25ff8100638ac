"""Pruning results for ``mnist-small`` on MNIST: unpruned baselines (>= 2 seeds, for the noise)
and method x granularity x target (fewer binary ops) with a fixed fine-tuning budget.

Phases (each writes JSON under --out; the table phase reads them all)::

    python benchmarks/prune_mnist.py baseline --seed 0 --epochs 1
    python benchmarks/prune_mnist.py baseline --seed 1 --epochs 1
    python benchmarks/prune_mnist.py grid --granularity channel
    python benchmarks/prune_mnist.py grid --granularity weight
    python benchmarks/prune_mnist.py table          # markdown table + accuracy-vs-bops PNG

Budgets are flags and are written into every record. Methods: ``latent`` (|w|, uniform
per-layer ratio), ``latent-sens`` (|w| with per-layer ratios from the sensitivity sweep on the
validation tail of the training split and the greedy allocator), ``flip`` (flip counts over a
short training interval, per-layer ratio proportional to the fraction of insensitive weights),
``random`` (uniform), and ``none`` (no pruning, same fine-tuning: the control). The validation
tail (last --val-size training images) is never trained on; test accuracy is on all 10k test
images. One torch thread (the machine is shared).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _records import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _env():
    if not os.environ.get("ONEBIT_DATA") and (ROOT.parent / "shared" / "datasets").is_dir():
        os.environ["ONEBIT_DATA"] = str(ROOT.parent / "shared" / "datasets")
    torch.set_num_threads(1)


def baseline(args):
    from onebit.train import TrainConfig, train

    out = Path(args.out)
    ckpt = out / f"baseline_s{args.seed}.pt"
    t0 = time.perf_counter()
    res = train(TrainConfig(model="mnist-small", dataset="mnist", epochs=args.epochs, batch_size=128,
                            lr=args.lr, out=str(ckpt), width=args.width, seed=args.seed, threads=1,
                            limit_train=args.limit_train or 60000 - args.val_size,
                            limit_test=args.limit_test, progress=False, device="cpu"))
    rec = {"seed": args.seed, "epochs": args.epochs, "width": args.width, "lr": args.lr,
           "limit_train": args.limit_train or 60000 - args.val_size, "test_accuracy": res.test_accuracy,
           "train_seconds": res.train_seconds, "wall_seconds": time.perf_counter() - t0,
           "checkpoint": str(ckpt), "command": " ".join(sys.argv), "machine": machine()}
    (out / f"baseline_s{args.seed}.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(json.dumps({k: rec[k] for k in ("seed", "test_accuracy", "train_seconds")}))


def grid(args):
    from onebit.prune import FlipCounter, Pruner, count_bops
    from onebit.prune import finetune as ft
    from onebit.prune.checkpoint import load_checkpoint
    from onebit.prune.sensitivity import allocate, sweep

    out = Path(args.out)
    torch.manual_seed(0)
    base, ckpt = load_checkpoint(out / f"baseline_s{args.seed}.pt")
    test = ft.test_loader("mnist", limit=args.limit_test)
    val = ft._loader("mnist", "train", 500, start=-args.val_size,
                     stop=None if args.sweep_size >= args.val_size else -args.val_size + args.sweep_size)
    train = ft.train_loader("mnist", args.val_size, 128, seed=1)
    g = args.granularity
    records = []
    if args.append and (out / f"grid_{g}.json").exists():
        # continue an interrupted grid: keep its finished runs (same checkpoint and budget)
        records = json.loads((out / f"grid_{g}.json").read_text())["records"]
    base_acc = ft.evaluate(base, test)
    dense = count_bops(base).dense_bops

    def run(method, target, model, make_pruner, extra=None):
        t0 = time.perf_counter()
        pruner = make_pruner(model) if make_pruner else None
        if pruner is not None:
            rep = pruner.report()
        acc0 = ft.evaluate(model, test)
        st = ft.finetune(model, train, max_steps=args.finetune_steps, lr=args.ft_lr, pruner=pruner,
                         schedule="cosine")
        if pruner is not None:
            model = pruner.finalize()
        acc = ft.evaluate(model, test)
        bops = count_bops(model).bops
        rec = {"method": method, "granularity": g, "target": target, "bops": bops, "dense_bops": dense,
               "reduction": 1 - bops / dense, "test_accuracy_before_finetune": acc0,
               "test_accuracy": acc, "finetune_steps": st["steps"], "seconds": time.perf_counter() - t0,
               "ratios": pruner.achieved if pruner is not None else {},
               "live_binary_weights": sum(int(l.weight_mask.sum()) if l.weight_mask is not None
                                          else l.weight.numel() for l in _binary(model)),
               **(extra or {})}
        records.append(rec)
        print(json.dumps({k: rec[k] for k in ("method", "granularity", "target", "reduction",
                                                "test_accuracy_before_finetune", "test_accuracy", "seconds")}),
              flush=True)
        (out / f"grid_{g}.json").write_text(json.dumps({
            "baseline_test_accuracy": base_acc, "budget": vars(args), "machine": machine(),
            "command": " ".join(sys.argv), "records": records}, indent=1) + "\n")

    for method in args.methods:
        if method == "none":
            run("none", 0.0, copy.deepcopy(base), None)
            continue
        source, counter, curves = base, None, None
        extra = {}
        if method == "flip":
            # counting interval: a short stretch of training from the baseline
            source = copy.deepcopy(base)
            counter = FlipCounter(source)
            ft.finetune(source, train, max_steps=args.flip_steps, lr=args.ft_lr, flip_counter=counter)
            extra = {"flip_steps": args.flip_steps, "insensitive_fraction": counter.insensitive_fraction()}
        if method == "latent-sens":
            t0 = time.perf_counter()
            curves = sweep(base, lambda m: ft.evaluate(m, val), method="latent", granularity=g)
            extra = {"sensitivity": curves.to_dict(), "sweep_seconds": time.perf_counter() - t0}
        for target in args.targets:
            model = copy.deepcopy(source)
            fc = None
            if counter is not None:
                fc = FlipCounter(model)
                fc.load_state_dict(counter.state_dict())

            def make(m, method=method, target=target, fc=fc):
                score = "latent" if method == "latent-sens" else method
                p = Pruner(m, score, g, target, flip_counter=fc, seed=args.seed).prepare()
                if curves is not None:
                    alloc = allocate(curves, target, p.reduction_fn())
                    p.prune(ratios=alloc["ratios"])
                else:
                    p.prune()
                return p

            run(method, target, model, make, extra)


def _binary(model):
    from onebit.prune import binary_layers

    return [m for _, m in binary_layers(model)]


def table(args):
    out = Path(args.out)
    bases = sorted(out.glob("baseline_s*.json"))
    b = [json.loads(p.read_text()) for p in bases]
    accs = [r["test_accuracy"] for r in b]
    spread = max(accs) - min(accs) if len(accs) > 1 else float("nan")
    lines = [f"Unpruned baselines: " + ", ".join(f"seed {r['seed']} {100 * r['test_accuracy']:.2f}%" for r in b)
             + f"; noise (spread over seeds) {100 * spread:.2f} points.", ""]
    pts = []
    for path in sorted(out.glob("grid_*.json")):
        d = json.loads(path.read_text())
        ref = d["baseline_test_accuracy"]
        control = [r for r in d["records"] if r["method"] == "none"]
        ctrl = control[0]["test_accuracy"] if control else None
        lines += [f"Granularity `{path.stem[5:]}` (pruned from seed {d['budget']['seed']}, test {100 * ref:.2f}%; "
                  f"fine-tune {d['budget']['finetune_steps']} steps of batch 128, Adam lr {d['budget']['ft_lr']} cosine to 0; "
                  f"flip interval {d['budget']['flip_steps']} steps at constant lr {d['budget']['ft_lr']}):", "",
                  "| method | target | binary ops (M) | fewer bops | acc. before fine-tune (%) | acc. after (%) "
                  "| vs baseline | vs control | within noise |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in d["records"]:
            delta = r["test_accuracy"] - ref
            ok = "yes" if delta >= -spread else "no"
            vs = "" if ctrl is None else f"{100 * (r['test_accuracy'] - ctrl):+.2f}"
            lines.append(f"| {r['method']} | {r['target']:.0%} | {r['bops'] / 1e6:.2f} | {r['reduction']:.1%} | "
                         f"{100 * r['test_accuracy_before_finetune']:.2f} | {100 * r['test_accuracy']:.2f} | "
                         f"{100 * delta:+.2f} | {vs} | {ok} |")
            if r["method"] != "none":
                pts.append({"method": r["method"], "granularity": r["granularity"], "bops": r["bops"],
                            "accuracy": r["test_accuracy"]})
        if control:
            lines.append("")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    (out / "table.md").write_text(text + "\n")
    if pts:
        from onebit.prune.plots import plot_pareto

        dense = json.loads(next(out.glob("grid_*.json")).read_text())["records"][0]["dense_bops"]
        plot_pareto(pts, out / "pareto.png", baseline={"bops": dense, "accuracy": accs})
        for path in sorted(out.glob("grid_*.json")):
            for r in json.loads(path.read_text())["records"]:
                if "sensitivity" in r:
                    from onebit.prune.plots import plot_sensitivity
                    from onebit.prune.sensitivity import SensitivityCurves

                    plot_sensitivity(SensitivityCurves.from_dict(r["sensitivity"]),
                                     out / f"sensitivity_{r['granularity']}.png")
                    break


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["baseline", "grid", "table"])
    ap.add_argument("--out", default=str(ROOT / "runs" / "prune_mnist"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--val-size", type=int, default=5000)
    ap.add_argument("--granularity", default="channel", choices=["weight", "word", "channel"])
    ap.add_argument("--methods", nargs="+", default=["none", "latent", "latent-sens", "flip", "random"])
    ap.add_argument("--targets", nargs="+", type=float, default=[0.2, 0.3, 0.4, 0.5])
    ap.add_argument("--finetune-steps", type=int, default=100)
    ap.add_argument("--ft-lr", type=float, default=2e-4, help="peak Adam lr, cosine-annealed to 0")
    ap.add_argument("--flip-steps", type=int, default=100)
    ap.add_argument("--sweep-size", type=int, default=2000, help="validation images per sensitivity point")
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--append", action="store_true", help="grid: keep the records already in grid_<g>.json")
    ap.add_argument("--limit-train", type=int, default=None, help="baseline: first N images (smoke runs)")
    args = ap.parse_args()
    _env()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    {"baseline": baseline, "grid": grid, "table": table}[args.phase](args)


if __name__ == "__main__":
    main()
