"""CBNN bit-slice study: the int8-first-layer baseline vs bit-plane inputs (8, 6, 4, 2 planes per
colour, Li and Ren, arXiv 1802.00904) at one training budget, then the sensitivity-chosen planes.

Phases (each writes under --out; ``measure`` writes the JSON record)::

    nice python benchmarks/bitslice_study.py train --dataset mnist --out runs/bitslice
    nice python benchmarks/bitslice_study.py train --dataset cifar10 --out runs/bitslice
    nice python benchmarks/bitslice_study.py measure --out runs/bitslice \\
        --json benchmarks/results/bitslice/bitslice.json
    python benchmarks/report.py --write

``train`` trains each variant (same recipe, budget and seed; first ``--limit-train`` training
images; the last ``--val-size`` training images are the validation set of the sensitivity
analysis and never trained on). ``measure`` exports every checkpoint, evaluates it on the engine
over the whole test split, times the whole network on the engine (batch 1), reports the file size
and the first layer's cost, runs ``onebit prune --method bitslice`` on the 8-plane model for an
accuracy budget (with a short fine-tune) and measures the pruned model the same way.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _records import machine  # noqa: E402
from report import input_label  # noqa: E402

VARIANTS = ("int8", 8, 6, 4, 2)
BUDGETS = {  # per dataset: model, width, training images, epochs, batch, lr
    "mnist": dict(model="mnist-small", width=1.0, limit_train=20000, epochs=2, batch_size=128, lr=3e-3),
    "cifar10": dict(model="cifar-binarynet", width=0.125, limit_train=10000, epochs=2, batch_size=128, lr=3e-3),
}


def _tag(dataset, variant) -> str:
    return f"{dataset}_{'int8' if variant == 'int8' else f'p{variant}'}"


def cmd_train(args):
    import torch

    from onebit.train import TrainConfig, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    b = BUDGETS[args.dataset]
    for variant in args.variants or VARIANTS:
        variant = variant if variant == "int8" else int(variant)
        tag = _tag(args.dataset, variant)
        ckpt = out / f"{tag}.pt"
        if ckpt.exists():
            print(f"{tag}: {ckpt} exists, skipped", flush=True)
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        torch.manual_seed(args.seed)
        res = train(TrainConfig(model=b["model"], dataset=args.dataset, epochs=b["epochs"],
                                batch_size=b["batch_size"], lr=b["lr"], width=b["width"],
                                limit_train=b["limit_train"], limit_test=args.limit_test,
                                input_bits=None if variant == "int8" else variant, seed=args.seed,
                                threads=1, device="cpu", progress=False, out=str(ckpt)))
        rec = {"tag": tag, "dataset": args.dataset, "variant": str(variant), "seed": args.seed,
               "budget": dict(b, limit_test=args.limit_test), "train_seconds": res.train_seconds,
               "wall_seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
               "train_test_accuracy": res.test_accuracy, "checkpoint": str(ckpt)}
        (out / f"{tag}.train.json").write_text(json.dumps(rec, indent=1) + "\n")
        print(json.dumps(rec), flush=True)


def _first_layer(mf) -> dict:
    """Cost and stored size of the ops before the first binary layer (the input layer)."""
    import math

    ops, out = [], {"ops": [], "macs_int8": 0, "bit_macs": 0, "weight_bytes": 0}
    for op in mf.ops:
        if op.type not in ("conv2d_u8", "bitplanes", "bconv2d_planes"):
            break
        ops.append(op)
    for op in ops:
        out["ops"].append(op.type)
        a = op.attrs
        for t in op.tensors.values():
            out["weight_bytes"] += int(mf.tensors[t].nbytes)
        if op.type == "bitplanes":
            out["planes"] = list(a["planes"])
            continue
        oh, ow, _ = mf.values[op.output].shape
        macs = oh * ow * a["out_channels"] * a["kernel"][0] * a["kernel"][1] * a["in_channels"]
        if op.type == "conv2d_u8":
            out["macs_int8"] += macs
        else:  # M binary dot products per output: bit-MACs, and the 64-bit words they take
            m = a["weight_bits"]
            out["bit_macs"] += macs * m
            out["weight_bits"] = m
            out["weight_layout"] = a.get("weight_layout", "taps")
            kh, kw, cin = a["kernel"][0], a["kernel"][1], a["in_channels"]
            words = math.ceil(kh * kw * cin / 64) if out["weight_layout"] == "window" else kh * kw * math.ceil(cin / 64)
            out["words_per_window"] = words
            out["word_ops"] = oh * ow * a["out_channels"] * m * words
    return out


def _time_variants(paths: dict, repeats: int, rounds: int, threads: int) -> dict:
    """Batch-1 latency of every file: the sum of the executor's op times per run (medians over
    ``rounds`` x ``repeats`` runs, the files interleaved round by round so that all see the same
    machine state), and the input layer's share (the ops before the first binary layer)."""
    import statistics

    import numpy as np

    from onebit.runtime import Session

    sess = {k: Session(str(p), threads=threads) for k, p in paths.items()}
    x = {}
    for k, s in sess.items():
        h, w, c = s.input_shape
        x[k] = np.random.default_rng(0).integers(0, 256, (1, h, w, c), dtype=np.uint8)
    whole = {k: [] for k in sess}
    first = {k: [] for k in sess}
    for _ in range(rounds):
        for k, s in sess.items():
            times = s.op_times(x[k], repeats=repeats)
            names = [op.name for op in s.model.ops]
            head = [n for n, op in zip(names, s.model.ops) if op.type in ("conv2d_u8", "bitplanes", "bconv2d_planes")]
            for i in range(repeats):
                whole[k].append(sum(times[n][i] for n in names))
                first[k].append(sum(times[n][i] for n in head))
    out = {}
    for k, s in sess.items():
        out[k] = {"median_ms": statistics.median(whole[k]),
                  "min_ms": min(whole[k]), "first_layer_median_ms": statistics.median(first[k]),
                  "samples": len(whole[k])}
    return out


def _plot(ds: str, rows: list, path: Path) -> Path:
    """Engine test accuracy and batch-1 latency per input variant (the int8 baseline dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = next(r for r in rows if r["input_bits"] is None)
    var = [r for r in rows if r["input_bits"] is not None]
    labels = [input_label(r, short=True) for r in var]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=120)
    a1.bar(labels, [100 * r["engine_test_accuracy"] for r in var], color="C0")
    a1.axhline(100 * base["engine_test_accuracy"], color="k", ls="--", lw=1, label="int8 first layer")
    lo = min(100 * r["engine_test_accuracy"] for r in rows)
    a1.set_ylim(max(0, lo - 5), 100 * max(r["engine_test_accuracy"] for r in rows) + 2)
    a1.set_ylabel("engine test accuracy (%)")
    a1.legend(fontsize=7)
    a2.bar(labels, [r["median_ms"] for r in var], color="C1", label="whole network")
    a2.bar(labels, [r["first_layer_median_ms"] for r in var], color="C3", label="input layer")
    a2.axhline(base["median_ms"], color="k", ls="--", lw=1, label="int8 baseline, whole network")
    a2.set_ylabel("batch-1 latency (ms, median)")
    a2.legend(fontsize=7)
    for a in (a1, a2):
        a.tick_params(axis="x", labelsize=7)
        a.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{ds}: bit-plane input vs int8 first layer")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def cmd_measure(args):
    import os

    import torch

    from onebit.convert import export
    from onebit.data import load
    from onebit.prune.bitslice import prune_checkpoint_bitslice
    from onebit.prune.checkpoint import load_checkpoint
    from onebit.runtime import Session, capabilities
    from onebit.runtime import format as fmt

    torch.set_num_threads(1)
    out = Path(args.out)
    plots = Path(args.json).parent
    plots.mkdir(parents=True, exist_ok=True)
    rec = {"study": "bitslice", **machine(), "threads": args.threads, "isa": capabilities()["active"],
           "loadavg_start": list(os.getloadavg()), "command": " ".join(sys.argv), "datasets": {}}
    for ds in args.datasets:
        b = BUDGETS[ds]
        t0 = time.perf_counter()
        d = {"budget": dict(b), "rows": []}
        p8 = out / f"{_tag(ds, 8)}.pt"
        pruned = out / f"{ds}_pruned.pt"
        if p8.exists():
            pr = prune_checkpoint_bitslice(p8, max_loss=args.max_loss, seeds=args.noise_seeds,
                                           finetune_epochs=args.finetune_epochs, out=pruned,
                                           lr=args.finetune_lr, val_size=args.val_size,
                                           limit_train=args.finetune_limit, limit_test=args.prune_limit_test,
                                           seed=0, plot_dir=out / ds,
                                           progress=False)
            png = plots / f"{ds}_plane_sensitivity.png"
            png.write_bytes(Path(pr["plots"][0]).read_bytes())
            pr["plots"] = [str(png)]
            d["prune"] = pr
        images, labels = load(ds, "test")
        paths, info = {}, {}
        variants = [v for v in VARIANTS if (out / f"{_tag(ds, v)}.pt").exists()]
        names = [_tag(ds, v) for v in variants] + ([f"{ds}_pruned"] if pruned.exists() else [])
        for name in names:
            model, ckpt = load_checkpoint(out / f"{name}.pt")
            path = out / f"{name}.onebit"
            export(model, path)
            mf = fmt.load(path)
            sess = Session(str(path), threads=args.threads)
            train = json.loads((out / f"{name}.train.json").read_text()) if (out / f"{name}.train.json").exists() else {}
            info[name] = {"tag": name, "input_bits": ckpt["model_config"].get("input_bits"),
                          "file_bytes": path.stat().st_size, "first_layer": _first_layer(mf),
                          "engine_test_accuracy": sess.evaluate(images, labels),
                          "test_images": int(len(labels)),
                          "train_seconds": train.get("train_seconds"), "cpu_seconds": train.get("cpu_seconds")}
            paths[name] = path
            print(json.dumps({k: info[name][k] for k in ("tag", "engine_test_accuracy", "file_bytes")}), flush=True)
        timing = _time_variants(paths, args.repeats, args.rounds, args.threads)
        for name in names:
            d["rows"].append({**info[name], **timing[name]})
        d["seconds"] = time.perf_counter() - t0
        d["plot"] = str(_plot(ds, d["rows"], plots / f"{ds}_accuracy_latency.png"))
        rec["datasets"][ds] = d
    rec["loadavg_end"] = list(os.getloadavg())
    Path(args.json).write_text(json.dumps(rec, indent=1, default=str) + "\n")
    print(f"json: {args.json}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="phase", required=True)
    t = sub.add_parser("train")
    t.add_argument("--dataset", choices=sorted(BUDGETS), required=True)
    t.add_argument("--variants", nargs="*", default=None, help="subset of int8 8 6 4 2")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit-test", type=int, default=2000)
    t.add_argument("--out", default="runs/bitslice")
    m = sub.add_parser("measure")
    m.add_argument("--datasets", nargs="*", default=["mnist", "cifar10"])
    m.add_argument("--out", default="runs/bitslice")
    m.add_argument("--json", default="benchmarks/results/bitslice/bitslice.json")
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--repeats", type=int, default=30)
    m.add_argument("--rounds", type=int, default=3)
    m.add_argument("--max-loss", type=float, default=0.01, help="accuracy budget of the plane choice (fraction)")
    m.add_argument("--noise-seeds", type=int, default=3)
    m.add_argument("--val-size", type=int, default=2000)
    m.add_argument("--finetune-epochs", type=float, default=1.0)
    m.add_argument("--finetune-limit", type=int, default=5000, help="fine-tune on the first N training images")
    m.add_argument("--finetune-lr", type=float, default=1e-3)
    m.add_argument("--prune-limit-test", type=int, default=2000,
                   help="test images of the prune step's own before/after accuracies (the table's are the engine's "
                        "on the whole test split)")
    args = ap.parse_args(argv)
    {"train": cmd_train, "measure": cmd_measure}[args.phase](args)


if __name__ == "__main__":
    main()
