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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="phase", required=True)
    t = sub.add_parser("train")
    t.add_argument("--dataset", choices=sorted(BUDGETS), required=True)
    t.add_argument("--variants", nargs="*", default=None, help="subset of int8 8 6 4 2")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit-test", type=int, default=2000)
    t.add_argument("--out", default="runs/bitslice")
    args = ap.parse_args(argv)
    {"train": cmd_train}[args.phase](args)


if __name__ == "__main__":
    main()
