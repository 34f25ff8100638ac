"""The converter/runtime steps of ``onebit demo`` (after training): export, engine evaluation,
latency against the PyTorch float twin, and the final table.

Each step takes the demo's ``DemoState`` (``onebit.cli.demo``): it reads ``state.model``,
``state.workdir``, ``state.options`` and ``state.results["train"]``, prints what it did and
records its figures in ``state.results``. The demo runs them after its training steps::

    from onebit.convert.demo_steps import STEPS as CONVERT_STEPS
    STEPS = [step_train, step_summary, step_report, *CONVERT_STEPS]
"""
from __future__ import annotations

import os
import time

import numpy as np


def step_export(state) -> None:
    """Convert the trained model to ``<workdir>/mnist-small.onebit``."""
    from onebit.convert import export

    path = state.workdir / "mnist-small.onebit"
    t0 = time.perf_counter()
    export(state.model.cpu().eval(), path, dataset="mnist")
    size = os.path.getsize(path)
    state.onebit_file = path
    state.results["export"] = {"file": str(path), "bytes": size, "seconds": time.perf_counter() - t0}
    state.echo(f"[export] {path.name}: {size / 1024:.1f} KiB (binary weights packed 64 per word, "
               f"BN folded into integer thresholds)")


def step_engine_eval(state) -> None:
    """Test accuracy through the engine, and through the integer simulation: they must agree."""
    import torch

    from onebit.convert import simulate
    from onebit.data import load
    from onebit.runtime import Session

    images, labels = load("mnist", split="test")
    lim = state.options.limit_test
    if lim:
        images, labels = images[:lim], labels[:lim]
    sess = Session(state.onebit_file)
    t0 = time.perf_counter()
    pred = sess.predict(images, 500)
    engine_s = time.perf_counter() - t0
    sim = simulate(sess.model)
    with torch.no_grad():
        sp = np.concatenate([sim(torch.from_numpy(np.array(images[i:i + 500]))).argmax(1).numpy()
                             for i in range(0, len(images), 500)])
    acc, sim_acc = float((pred == labels).mean()), float((sp == labels).mean())
    agree = float((pred == sp).mean())
    state.results["engine_eval"] = {"n": int(len(labels)), "engine_accuracy": acc, "simulation_accuracy": sim_acc,
                                    "argmax_agreement": agree, "isa": sess.isa, "threads": sess.threads,
                                    "engine_seconds": engine_s}
    state.echo(f"[engine] test accuracy {acc * 100:.2f}% on {len(labels)} images through the engine "
               f"({sess.isa}, {sess.threads} threads, {len(labels) / engine_s:.0f} img/s); integer "
               f"simulation {sim_acc * 100:.2f}%, argmax agreement {agree * 100:.2f}%")
    if agree != 1.0:
        state.echo("[engine] WARNING: engine and simulation disagree: this is a bug, please report it")


def _torch_ms(model, x, repeats=50):
    import torch

    from onebit.runtime.bench import median_ms

    model.eval()
    with torch.no_grad():
        return median_ms(lambda: model(x), repeats=repeats, warmup=5)


def step_latency(state) -> None:
    """Batch-1 latency, one thread: onebit engine vs the PyTorch float twin (and the PyTorch BNN)."""
    import torch

    import onebit
    import onebit.models as om
    from onebit.runtime import Session
    from onebit.runtime.bench import time_session

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sess = Session(state.onebit_file, threads=1)
        ours = time_session(sess, batch=1, repeats=100)
        cfg = dict(getattr(state.model, "onebit_config", {}) or {"name": "mnist-small"})
        cfg["float_twin"] = True
        twin = om.create(**cfg)
        x = torch.zeros((1,) + tuple(twin.input_shape))
        twin_ms = _torch_ms(twin, x)
        bnn_ms = _torch_ms(state.model.cpu(), x)
        twin_bytes = 4 * sum(p.numel() for p in twin.parameters())
        totals = onebit.summary(state.model.cpu()).to_json().get("totals", {})
    finally:
        torch.set_num_threads(threads)
    state.results["latency"] = {"onebit_ms": ours, "torch_float_twin_ms": twin_ms, "torch_bnn_ms": bnn_ms,
                                "isa": sess.isa, "threads": 1, "batch": 1, "float_twin_bytes": twin_bytes,
                                "binary_macs": totals.get("binary_macs"), "float_macs": totals.get("float_macs")}
    state.echo(f"[latency] batch 1, 1 thread: onebit {ours:.3f} ms ({sess.isa}), PyTorch float twin "
               f"{twin_ms:.3f} ms, PyTorch binary model {bnn_ms:.3f} ms")


def step_table(state) -> None:
    """The demo's final table."""
    from onebit.table import format_table

    r = state.results
    lat, ev, ex = r["latency"], r["engine_eval"], r["export"]
    rows = [
        {"": "accuracy (PyTorch, float latent)", "value": f"{r['train']['test_accuracy'] * 100:.2f}%"},
        {"": "accuracy (integer simulation)", "value": f"{ev['simulation_accuracy'] * 100:.2f}%"},
        {"": "accuracy (onebit engine)", "value": f"{ev['engine_accuracy'] * 100:.2f}%"},
        {"": "model file", "value": f"{ex['bytes'] / 1024:.1f} KiB"},
        {"": "float32 twin parameters", "value": f"{lat['float_twin_bytes'] / 1024:.1f} KiB"},
        {"": "binary MACs / image", "value": f"{lat['binary_macs'] / 1e6:.2f} M" if lat["binary_macs"] else "?"},
        {"": "float MACs / image", "value": f"{lat['float_macs'] / 1e6:.2f} M" if lat["float_macs"] else "?"},
        {"": f"latency onebit ({lat['isa']}, 1 thread, batch 1)", "value": f"{lat['onebit_ms']:.3f} ms"},
        {"": "latency PyTorch float twin (1 thread)", "value": f"{lat['torch_float_twin_ms']:.3f} ms"},
        {"": "speedup vs float twin", "value": f"{lat['torch_float_twin_ms'] / lat['onebit_ms']:.1f}x"},
    ]
    state.echo(format_table(rows))


STEPS = [step_export, step_engine_eval, step_latency, step_table]
