"""Bit-flip robustness of a zoo model on the engine: accuracy vs flips, each kind of stored bit.

    .venv/bin/python benchmarks/robustness_zoo.py [--model mnist-small --dataset mnist --width 1
        --epochs 1 --limit-test N] [--out benchmarks/results/robustness_<model>.json]

Trains the model on the full training split (CPU, the default recipe), exports it, then runs
``onebit.robustness.study`` on the test split: random flips of binary weights,
thresholds and int8 weights (3 seeded trials per count, counts up to the number of bits of
the kind) and the progressive bit search (binary weights, attack batch of 128 training images).
Prints one table per mode and writes one JSON record (machine, commit, load, training record,
both studies) and the plot next to it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import REPO_ROOT, machine  # noqa: E402

RANDOM_COUNTS = (1, 10, 100, 1000, 10000, 100000)
PROGRESSIVE_COUNTS = (1, 2, 5, 10, 20, 50)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist-small")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit-test", type=int, default=None, help="first N test images (default: all)")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="default benchmarks/results/robustness_<model>.json")
    args = ap.parse_args()
    if args.out is None:
        args.out = str(REPO_ROOT / "benchmarks" / "results" / f"robustness_{args.model.replace('-', '_')}.json")

    import torch

    from onebit.convert import export
    from onebit.robustness import find_sites, study
    from onebit.robustness.report import plot, table_rows
    from onebit.table import format_table
    from onebit.train import TrainConfig, load_checkpoint, train

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="robustness-"))
    t0 = time.perf_counter()
    tr = train(TrainConfig(model=args.model, dataset=args.dataset, width=args.width, epochs=args.epochs,
                           device="cpu", threads=args.threads, progress=False, out=str(work / "m.pt")))
    model, _ = load_checkpoint(work / "m.pt")
    path = export(model, work / "m.onebit", dataset=args.dataset)
    data = Path(path).read_bytes()
    random_recs = []
    for kind in ("binary", "thresholds", "int8"):
        bits = find_sites(data, kind).count
        counts = [n for n in RANDOM_COUNTS if n <= bits]
        if not counts:
            continue
        random_recs.append(study(path, args.dataset, counts, mode="random", kinds=(kind,), seed=0,
                                 trials=args.trials, threads=args.threads, limit=args.limit_test))
    merged = dict(random_recs[0])
    merged["rows"] = [r for rec in random_recs for r in rec["rows"]]
    merged["sites"] = {k: v for rec in random_recs for k, v in rec["sites"].items()}
    merged["seconds"] = sum(rec["seconds"] for rec in random_recs)
    prog = study(path, args.dataset, list(PROGRESSIVE_COUNTS), mode="progressive", checkpoint=work / "m.pt",
                 attack_batch=128, seed=0, threads=args.threads, limit=args.limit_test)
    for name, rec in (("random", merged), ("progressive", prog)):
        print(f"{args.model}, {name} flips, {rec['images']} test images (engine)")
        print(format_table(table_rows(rec), floatfmt={"accuracy_%": ".2f", "min_%": ".2f", "max_%": ".2f",
                                                      "drop_pt": ".2f"}))
    out = Path(args.out)
    record = {
        "benchmark": "robustness_zoo", "machine": machine(), "torch_threads": args.threads,
        "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
        "training": {"model": args.model, "dataset": args.dataset, "width": args.width, "epochs": args.epochs,
                     "test_accuracy": tr.test_accuracy,
                     "train_seconds": tr.train_seconds, "file_bytes": len(data)},
        "random": merged, "progressive": prog, "seconds": time.perf_counter() - t0,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"json: {out}")
    for name, rec in (("random", merged), ("progressive", prog)):
        rec = dict(rec, model=f"{args.model}.onebit")
        print(f"plot: {plot(rec, out.with_name(f'{out.stem}_{name}.png'))}")


if __name__ == "__main__":
    main()
