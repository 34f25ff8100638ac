"""QAT on a trained checkpoint: float-latent vs integer simulation vs engine, before and after.

    python benchmarks/qat_eval.py runs/final/mnist_b.pt --steps 200 --lr 1e-5 --isa avx2 --json out.json

Before and after ``onebit.convert.qat.finetune`` (``--steps`` batches of the checkpoint's
training split, BatchNorm statistics frozen), on the whole test split: the float-latent model's
accuracy, the QAT forward's accuracy (the model as QAT trains it), the simulation's accuracy,
the engine's accuracy on every ISA, and the argmax agreements float/simulation,
QAT-forward/simulation and engine/simulation. Prints a table and writes one JSON record per
phase (with machine, commit and the fine-tuning settings).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _records import machine, write_json  # noqa: E402


def qat_forward_predictions(model, ds, images, batch_size=500):
    from onebit.convert import qat
    from onebit.data import info, normalize

    d = info(ds)
    m = qat.prepare(copy.deepcopy(model), d.mean, d.std).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(m(torch.from_numpy(normalize(np.ascontiguousarray(images[i:i + batch_size]), ds)))
                       .argmax(1).numpy())
    return np.concatenate(out)


def measure(model, ds, limit, phase, isas=None):
    from onebit.convert.verify import verify_model

    preds = {}
    rec = verify_model(model, ds, limit, echo=None, predictions=preds, isas=isas)
    qat_pred = qat_forward_predictions(model, ds, load_test(ds, limit))
    rec.update(phase=phase, qat_forward_accuracy=float((qat_pred == preds["labels"]).mean()),
               qat_sim_argmax_agreement=float((qat_pred == preds["simulation"]).mean()))
    return rec


def load_test(ds, limit):
    from onebit.data import load

    images, _ = load(ds, split="test")
    return images[:limit] if limit else images


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="first N test images (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-binary", action="store_true", help="QAT also trains latent binary weights")
    ap.add_argument("--distill", type=float, default=0.0, help="weight of the KL term to the float model")
    ap.add_argument("--isa", action="append", default=None, help="engine ISA(s) (default: all the CPU has)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    from onebit.convert import qat
    from onebit.data import info, make_loader
    from onebit.train import load_checkpoint

    model, ckpt = load_checkpoint(a.checkpoint)
    ds = ckpt.get("dataset")
    ds = ds.get("name") if isinstance(ds, dict) else ds
    d = info(ds)
    recs = [measure(model, ds, a.limit, "before", a.isa)]
    loader = make_loader(ds, "train", a.batch_size, train=True, seed=a.seed)
    t0 = time.perf_counter()
    tuned = qat.finetune(model, loader, a.steps, mean=d.mean, std=d.std, lr=a.lr, train_binary=a.train_binary,
                         distill=a.distill)
    seconds = time.perf_counter() - t0
    recs.append(measure(tuned, ds, a.limit, "after", a.isa))
    common = {"checkpoint": a.checkpoint, "steps": a.steps, "lr": a.lr, "batch_size": a.batch_size,
              "train_binary": a.train_binary, "distill": a.distill, "lr_schedule": "cosine to 0", "qat_loss_first_last_20": [float(np.mean(tuned.qat_losses[:20])),
                                                                        float(np.mean(tuned.qat_losses[-20:]))],
              "seed": a.seed, "threads": a.threads, "finetune_seconds": seconds, **machine()}
    for r in recs:
        r.update(common)
    print(f"{'phase':8} {'float':>8} {'qat-fwd':>8} {'sim':>8} "
          + " ".join(f"{'eng-' + k:>11}" for k in recs[0]["engine"])
          + f" {'float=sim':>10} {'qat=sim':>8} " + " ".join(f"{k + '=sim':>11}" for k in recs[0]["engine"]))
    for r in recs:
        print(f"{r['phase']:8} {100 * r['float_accuracy']:7.2f}% {100 * r['qat_forward_accuracy']:7.2f}% "
              f"{100 * r['simulation_accuracy']:7.2f}% "
              + " ".join(f"{100 * e['accuracy']:10.2f}%" for e in r["engine"].values())
              + f" {100 * r['float_sim_argmax_agreement']:9.2f}% {100 * r['qat_sim_argmax_agreement']:7.2f}% "
              + " ".join(f"{100 * e['argmax_agreement_with_simulation']:10.2f}%" for e in r["engine"].values()))
    print(f"n={recs[0]['n']} test images, {a.steps} QAT steps (batch {a.batch_size}, lr {a.lr}) in {seconds:.1f} s, "
          f"commit {common['commit']}, cpu {common['cpu']}")
    if a.json:
        write_json(recs, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
