"""Bit-flip robustness of a zoo model on the engine: accuracy vs flips, each kind of stored bit.

    .venv/bin/python benchmarks/robustness_zoo.py [--model mnist-small --dataset mnist --width 1
        --epochs 1 --limit-test N] [--twin] [--checkpoint BNN.pt] [--twin-checkpoint TWIN.pt]
        [--out benchmarks/results/robustness_<model>.json]

Trains the model on the full training split (CPU, the default recipe; or takes ``--checkpoint``,
trained so), exports it, then runs ``onebit.robustness.study`` on the test split: random flips
of binary weights, thresholds and int8 weights (3 seeded trials per count, counts up to the
number of bits of the kind) and the progressive bit search (binary weights, attack batch of
128 training images). ``--twin``: also the float twin, trained with the same recipe and budget
(or ``--twin-checkpoint``), quantized to int8 and flipped at the same counts with the same seeds
and attack batch (``onebit.robustness.int8_twin``, PyTorch, same test images). Prints one table
per mode and writes one JSON record (machine, commit, load, training records, the studies) and
the plots next to it (one per mode, and both modes side by side with the twin).
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
    ap.add_argument("--twin", action="store_true", help="also the int8-quantized float twin")
    ap.add_argument("--checkpoint", default=None, help="the BNN, trained with this recipe (default: train it)")
    ap.add_argument("--twin-checkpoint", default=None, help="the float twin, trained so (implies --twin)")
    ap.add_argument("--out", default=None, help="default benchmarks/results/robustness_<model>.json")
    args = ap.parse_args()
    if args.out is None:
        args.out = str(REPO_ROOT / "benchmarks" / "results" / f"robustness_{args.model.replace('-', '_')}.json")

    import torch

    from onebit.convert import export
    from onebit.robustness import find_sites, study
    from onebit.robustness.int8_twin import twin_study
    from onebit.robustness.report import plot, plot_panels, table_rows
    from onebit.table import format_table
    from onebit.train import TrainConfig, load_checkpoint, read_checkpoint, train

    args.twin = args.twin or args.twin_checkpoint is not None
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="robustness-"))
    t0 = time.perf_counter()

    def trained(checkpoint, float_twin: bool, out: Path) -> tuple[Path, dict]:
        """The checkpoint (trained here unless given) and its training record."""
        if checkpoint is None:
            train(TrainConfig(model=args.model, dataset=args.dataset, width=args.width, epochs=args.epochs,
                              device="cpu", threads=args.threads, progress=False, float_twin=float_twin,
                              out=str(out)))
            checkpoint = out
        ck = read_checkpoint(checkpoint)
        cfg = ck["train_config"]
        # the recipe: everything the default TrainConfig would train with (device and logging aside)
        recipe = TrainConfig(model=args.model, dataset=args.dataset, width=args.width, epochs=args.epochs,
                             float_twin=float_twin).to_dict()
        differ = {k: (cfg.get(k), v) for k, v in recipe.items()
                  if k not in ("device", "threads", "progress", "out", "json_path", "data_root") and cfg.get(k) != v}
        if differ:
            raise SystemExit(f"{checkpoint} was not trained with this run's recipe: (its, needed) {differ}")
        return Path(checkpoint), {"model": args.model, "dataset": args.dataset, "width": args.width,
                                  "epochs": args.epochs, "float_twin": float_twin,
                                  "test_accuracy": ck["metrics"]["test_accuracy"],
                                  "train_seconds": ck["metrics"]["train_seconds"]}

    ckpt, tr = trained(args.checkpoint, False, work / "m.pt")
    model, _ = load_checkpoint(ckpt)
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
    prog = study(path, args.dataset, list(PROGRESSIVE_COUNTS), mode="progressive", checkpoint=ckpt,
                 attack_batch=128, seed=0, threads=args.threads, limit=args.limit_test)
    twin_training = None
    if args.twin:
        twin_ckpt, twin_training = trained(args.twin_checkpoint, True, work / "twin.pt")
        # the counts of the BNN's binary weights (the int8 twin has 8 bits per weight: all fit)
        merged["twin"] = twin_study(twin_ckpt, args.dataset, [n for n in RANDOM_COUNTS if n in merged["flips"]],
                                    mode="random", seed=0, trials=args.trials, limit=args.limit_test,
                                    threads=args.threads, bnn_checkpoint=ckpt)
        prog["twin"] = twin_study(twin_ckpt, args.dataset, list(PROGRESSIVE_COUNTS), mode="progressive",
                                  attack_batch=128, seed=0, limit=args.limit_test, threads=args.threads,
                                  bnn_checkpoint=ckpt)
    floatfmt = {"accuracy_%": ".2f", "min_%": ".2f", "max_%": ".2f", "drop_pt": ".2f"}
    for name, rec in (("random", merged), ("progressive", prog)):
        print(f"{args.model}, {name} flips, {rec['images']} test images (engine)")
        print(format_table(table_rows(rec), floatfmt=floatfmt))
        if "twin" in rec:
            print(f"int8 twin, {name} flips (PyTorch; float twin {100 * rec['twin']['float_accuracy']:.2f}%)")
            print(format_table(table_rows(rec["twin"]), floatfmt=floatfmt))
    out = Path(args.out)
    record = {
        "benchmark": "robustness_zoo", "machine": machine(), "torch_threads": args.threads,
        "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
        "training": dict(tr, file_bytes=len(data)),
        "random": merged, "progressive": prog, "seconds": time.perf_counter() - t0,
    }
    if twin_training is not None:
        record["twin_training"] = twin_training
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"json: {out}")
    recs = [dict(merged, model=f"{args.model}.onebit"), dict(prog, model=f"{args.model}.onebit")]
    for name, rec in zip(("random", "progressive"), recs):
        print(f"plot: {plot(rec, out.with_name(f'{out.stem}_{name}.png'))}")
    if args.twin:
        titles = [f"{args.model}: {name} bit flips" for name in ("random", "progressive")]
        print(f"plot: {plot_panels(recs, out.with_name(f'{out.stem}_vs_int8_twin.png'), titles)}")


if __name__ == "__main__":
    main()
