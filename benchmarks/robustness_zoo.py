"""Bit-flip robustness of a zoo model on the engine: accuracy vs flips, each kind of stored bit.

    .venv/bin/python benchmarks/robustness_zoo.py [--model mnist-small --dataset mnist --width 1
        --epochs 1 --limit-test N] [--twin | --add-twin] [--checkpoint BNN.pt]
        [--twin-checkpoint TWIN.pt] [--out benchmarks/results/robustness_<model>.json]

Trains the model on the full training split (CPU, the default recipe; or takes ``--checkpoint``,
trained so), exports it, then runs ``onebit.robustness.study`` on the test split: random flips
of binary weights, thresholds and int8 weights (3 seeded trials per count, counts up to the
number of bits of the kind) and the progressive bit search (binary weights, attack batch of
128 training images). Prints one table per mode and writes one JSON record (machine, commit,
load, training record, the studies) and the plots next to it.

``--twin``: also the float twin, trained with the same recipe and budget (or
``--twin-checkpoint``), quantized to int8 and flipped at the same counts with the same seeds
and attack batch on the same test images (``onebit.robustness.int8_twin``, in PyTorch); one
more plot, both modes side by side. ``--add-twin``: the twin's studies only, added to the
existing record ``--out`` (its model, recipe, counts, seeds and test images; the twin's own
machine, commit and load are recorded under ``twin_run``; ``--trials`` below the record's
keeps its first trials: the same draws).
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
ATTACK_BATCH = 128
FLOATFMT = {"accuracy_%": ".2f", "min_%": ".2f", "max_%": ".2f", "drop_pt": ".2f"}
#: TrainConfig fields that do not change what is trained
NOT_RECIPE = ("device", "threads", "progress", "out", "json_path", "data_root", "resident", "bf16")


def trained(args, checkpoint, float_twin: bool, out: Path) -> tuple[Path, dict]:
    """The checkpoint of the run's recipe (trained here unless given, then checked) and its
    training record."""
    from onebit.train import TrainConfig, read_checkpoint, train

    recipe = dict(model=args.model, dataset=args.dataset, width=args.width, epochs=args.epochs,
                  float_twin=float_twin)
    if checkpoint is None:
        train(TrainConfig(**recipe, device="cpu", threads=args.threads, progress=False, out=str(out)))
        checkpoint = out
    ck = read_checkpoint(checkpoint)
    differ = {k: (ck["train_config"].get(k), v) for k, v in TrainConfig(**recipe).to_dict().items()
              if k not in NOT_RECIPE and ck["train_config"].get(k) != v}
    if differ:
        raise SystemExit(f"{checkpoint} was not trained with this run's recipe: (its, needed) {differ}")
    return Path(checkpoint), dict(recipe, test_accuracy=ck["metrics"]["test_accuracy"],
                                  train_seconds=ck["metrics"]["train_seconds"])


def bnn_record(args, work: Path) -> tuple[dict, Path]:
    from onebit.convert import export
    from onebit.robustness import find_sites, study
    from onebit.train import load_checkpoint

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    ckpt, tr = trained(args, args.checkpoint, False, work / "m.pt")
    tr.pop("float_twin")
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
                 attack_batch=ATTACK_BATCH, seed=0, threads=args.threads, limit=args.limit_test)
    record = {
        "benchmark": "robustness_zoo", "machine": machine(), "torch_threads": args.threads,
        "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
        "training": dict(tr, file_bytes=len(data)),
        "random": merged, "progressive": prog, "seconds": time.perf_counter() - t0,
    }
    return record, ckpt


def add_twin(args, record: dict, work: Path, bnn_checkpoint=None) -> None:
    """The int8 twin's random and progressive studies, at the record's counts, seeds and images."""
    from onebit.robustness.int8_twin import twin_study

    tr = record["training"]
    got = (tr["model"], tr.get("dataset", args.dataset), tr.get("width", 1.0), tr["epochs"])
    if got != (args.model, args.dataset, args.width, args.epochs):
        raise SystemExit(f"{args.out} records {got}, not {(args.model, args.dataset, args.width, args.epochs)}")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    twin_ckpt, record["twin_training"] = trained(args, args.twin_checkpoint, True, work / "twin.pt")
    rnd, prog = record["random"], record["progressive"]
    limit = rnd["images"]
    # the counts of the BNN's binary weights (8 bits per int8 weight: the twin has more bits)
    rnd["twin"] = twin_study(twin_ckpt, args.dataset, rnd["flips"], mode="random", seed=rnd["seed"],
                             trials=min(args.trials, rnd["trials"]), limit=limit, threads=args.threads, bnn_checkpoint=bnn_checkpoint)
    prog["twin"] = twin_study(twin_ckpt, args.dataset, prog["flips"], mode="progressive", seed=prog["seed"],
                              attack_batch=prog["search"]["attack_batch"], limit=limit, threads=args.threads,
                              bnn_checkpoint=bnn_checkpoint)
    record["twin_run"] = {"machine": machine(), "torch_threads": args.threads, "load_avg_before": load_before,
                          "load_avg_after": os.getloadavg(), "seconds": time.perf_counter() - t0}


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
    ap.add_argument("--add-twin", action="store_true", help="the twin only, added to the existing record --out")
    ap.add_argument("--checkpoint", default=None, help="the BNN, trained with this recipe (default: train it)")
    ap.add_argument("--twin-checkpoint", default=None, help="the float twin, trained so (default: train it)")
    ap.add_argument("--out", default=None, help="default benchmarks/results/robustness_<model>.json")
    args = ap.parse_args()
    if args.out is None:
        args.out = str(REPO_ROOT / "benchmarks" / "results" / f"robustness_{args.model.replace('-', '_')}.json")

    import torch

    from onebit.robustness.report import plot, plot_panels, table_rows
    from onebit.table import format_table

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="robustness-"))
    out = Path(args.out)
    if args.add_twin:
        record = json.loads(out.read_text())
        add_twin(args, record, work)
    else:
        record, ckpt = bnn_record(args, work)
        if args.twin:
            add_twin(args, record, work, bnn_checkpoint=ckpt)
    recs = {name: dict(record[name], model=f"{args.model}.onebit") for name in ("random", "progressive")}
    for name, rec in recs.items():
        print(f"{args.model}, {name} flips, {rec['images']} test images (engine)")
        print(format_table(table_rows(rec), floatfmt=FLOATFMT))
        if "twin" in rec:
            print(f"int8 twin, {name} flips (PyTorch; float twin {100 * rec['twin']['float_accuracy']:.2f}%)")
            print(format_table(table_rows(rec["twin"]), floatfmt=FLOATFMT))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"json: {out}")
    for name, rec in recs.items():
        print(f"plot: {plot(rec, out.with_name(f'{out.stem}_{name}.png'))}")
    if "twin" in recs["random"]:
        titles = [f"{args.model}: {name} bit flips" for name in recs]
        print(f"plot: {plot_panels(list(recs.values()), out.with_name(f'{out.stem}_vs_int8_twin.png'), titles)}")


if __name__ == "__main__":
    main()
