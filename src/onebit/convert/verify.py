"""Check a trained checkpoint end to end: float-latent vs integer simulation vs engine (every ISA).

    onebit verify runs/results/mnist.pt [--limit N] [--exact N] [--json PATH]

Reports the PyTorch model's accuracy (float latent weights, the training-side forward), the
integer simulation's accuracy, the engine's accuracy on every ISA the CPU has, and the argmax
agreement of engine and simulation (must be 100%) on the whole test split; ``--exact N`` also
checks every intermediate value of engine and simulation for equality on the first N images.
"""
from __future__ import annotations

import json
import time

import numpy as np
import torch


def verify_checkpoint(ckpt_path, limit: int | None = None, batch_size: int = 500, echo=print,
                      exact: int = 0) -> dict:
    """:func:`verify_model` on a training checkpoint (its model and dataset)."""
    from onebit.train import load_checkpoint

    model, ckpt = load_checkpoint(ckpt_path)
    ds = ckpt.get("dataset")
    ds = ds.get("name") if isinstance(ds, dict) else ds
    rec = verify_model(model, ds, limit, batch_size, echo=None, exact=exact)
    rec = {"checkpoint": str(ckpt_path), "model": ckpt["model_config"], **rec}
    if echo is not None:
        echo(json.dumps(rec, indent=1))
    return rec


def verify_model(model, ds: str, limit: int | None = None, batch_size: int = 500, echo=print,
                 isas=None, predictions: dict | None = None, exact: int = 0) -> dict:
    """Float-latent vs integer simulation vs engine (every ISA, or ``isas``) on the test split.

    ``predictions`` (a dict, optional) receives the argmax arrays: ``float``, ``simulation``
    and one per ISA, plus ``labels``. ``exact`` = N > 0 also compares every intermediate value
    of engine and simulation on the first N test images per ISA
    (:func:`onebit.convert.compare.engine_vs_simulation`, equality; raises on a difference).
    """
    from onebit.convert import simulate, to_bytes
    from onebit.data import load, normalize
    from onebit.runtime import Session, capabilities

    data = to_bytes(model, dataset=ds)
    images, labels = load(ds, split="test")
    if limit:
        images, labels = images[:limit], labels[:limit]
    n = len(labels)
    model.eval()
    float_pred, sim_pred = [], []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            u = np.ascontiguousarray(images[i:i + batch_size])
            float_pred.append(model(torch.from_numpy(normalize(u, ds))).argmax(1).numpy())
    sess0 = Session(data)
    sim = simulate(sess0.model)
    with torch.no_grad():
        for i in range(0, n, batch_size):
            sim_pred.append(sim(torch.from_numpy(np.array(images[i:i + batch_size]))).argmax(1).numpy())
    float_pred, sim_pred = np.concatenate(float_pred), np.concatenate(sim_pred)
    rec = {"model_config": dict(getattr(model, "onebit_config", {}) or {}), "dataset": ds, "split": "test",
           "n": n, "float_accuracy": float((float_pred == labels).mean()),
           "simulation_accuracy": float((sim_pred == labels).mean()),
           "float_sim_argmax_agreement": float((float_pred == sim_pred).mean()), "engine": {}}
    for isa in isas or capabilities()["supported"]:
        sess = Session(data, isa=isa)
        t0 = time.perf_counter()
        pred = sess.predict(images, batch_size)
        rec["engine"][isa] = {"accuracy": float((pred == labels).mean()),
                              "argmax_agreement_with_simulation": float((pred == sim_pred).mean()),
                              "seconds": time.perf_counter() - t0, "threads": sess.threads}
        if predictions is not None:
            predictions[isa] = pred
        if exact:
            from onebit.convert.compare import engine_vs_simulation

            diffs = {}
            for i in range(0, min(exact, n), 50):
                diffs = engine_vs_simulation(sess, sim, images[i:min(exact, n, i + 50)])
            rec["engine"][isa]["values_equal"] = {"images": min(exact, n), "values": len(diffs),
                                                  "max_abs_diff": max(diffs.values(), default=0.0)}
    if predictions is not None:
        predictions.update(float=float_pred, simulation=sim_pred, labels=labels)
    if echo is not None:
        echo(json.dumps(rec, indent=1))
    return rec
