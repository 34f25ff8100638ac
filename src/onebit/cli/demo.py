"""``onebit demo``: the whole pipeline on MNIST, one step after another.

The demo is a list of steps (``STEPS``); each takes the shared :class:`DemoState`, does one
thing, prints what it did and records its figures in ``state.results`` (which ``--json``
writes): training, summary and accuracy, then the engine steps (``ENGINE_STEPS``: export,
engine evaluation against the integer simulation, latency against the PyTorch float twin, the
final table). Steps import torch on use, so that the CLI starts without it.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np

from onebit.errors import OnebitError

DEMO_MODEL = "mnist-small"
DEMO_DATASET = "mnist"


@dataclass
class DemoOptions:
    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3
    # 15000 of the 60000 training images keep the demo well under 5 minutes on 2 cores
    # (mnist-small trains at about 230 images/s on one core); --limit-train 60000 for all.
    limit_train: int | None = 15000
    limit_test: int | None = None
    threads: int | None = None
    seed: int = 0
    workdir: str | None = None
    device: str = "auto"
    progress: bool = True


@dataclass
class DemoState:
    options: DemoOptions
    workdir: Path
    echo: Callable[[str], None] = click.echo
    model: Any = None
    checkpoint: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)


def step_train(state: DemoState) -> None:
    """Train ``mnist-small`` on MNIST with the default recipe; keep the model and checkpoint."""
    from onebit.train import TrainConfig, train

    o = state.options
    state.checkpoint = state.workdir / f"{DEMO_MODEL}.pt"
    state.echo(f"[train] {DEMO_MODEL} on {DEMO_DATASET}: {o.epochs} epochs, batch {o.batch_size}, "
               f"lr {o.lr}, train images {o.limit_train or 'all'}")
    cfg = TrainConfig(model=DEMO_MODEL, dataset=DEMO_DATASET, epochs=o.epochs, batch_size=o.batch_size,
                      lr=o.lr, out=str(state.checkpoint), seed=o.seed, limit_train=o.limit_train,
                      limit_test=o.limit_test, threads=o.threads, device=o.device, progress=o.progress)
    result = train(cfg)
    state.model = result.model
    state.results["train"] = {
        "model": DEMO_MODEL, "dataset": DEMO_DATASET, "epochs": o.epochs,
        "limit_train": o.limit_train, "limit_test": o.limit_test,
        "test_accuracy": result.test_accuracy, "train_seconds": result.train_seconds,
        "history": result.history, "checkpoint": str(state.checkpoint),
        "torch_threads": result.environment["torch_threads"], "device": result.environment["device"],
    }


def step_summary(state: DemoState) -> None:
    """Print the per-layer summary (precision, packed size, binary and float MACs)."""
    import onebit

    s = onebit.summary(state.model.cpu())
    state.echo("[summary]")
    state.echo(s.table())
    state.results["summary"] = s.to_json()


def step_report(state: DemoState) -> None:
    """The test accuracy of the trained PyTorch model."""
    t = state.results["train"]
    state.echo(f"[result] {DEMO_MODEL} test accuracy {t['test_accuracy'] * 100:.2f}% "
               f"after {t['epochs']} epochs, {t['train_seconds']:.1f} s of training "
               f"({t['torch_threads']} torch threads, {t['device']})")


def step_export(state: DemoState) -> None:
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


def step_engine_eval(state: DemoState) -> None:
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

    from onebit.bench.timing import median_ms

    model.eval()
    with torch.no_grad():
        return median_ms(lambda: model(x), repeats=repeats, warmup=5)


def step_latency(state: DemoState) -> None:
    """Batch-1 latency, one thread: onebit engine vs the PyTorch float twin (and the PyTorch BNN)."""
    import torch

    import onebit
    import onebit.models as om
    from onebit.runtime import Session
    from onebit.bench.timing import time_session

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


def step_table(state: DemoState) -> None:
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


# after training: export, engine evaluation (== integer simulation), latency vs the PyTorch float
# twin, the final table
ENGINE_STEPS: list[Callable[[DemoState], None]] = [step_export, step_engine_eval, step_latency, step_table]
STEPS: list[Callable[[DemoState], None]] = [step_train, step_summary, step_report, *ENGINE_STEPS]


def run_demo(options: DemoOptions, echo: Callable[[str], None] = click.echo,
             steps: list[Callable[[DemoState], None]] | None = None) -> dict[str, Any]:
    """Run every step in order; returns ``state.results`` (per-step figures + total seconds)."""
    t0 = time.perf_counter()
    tmp = None
    if options.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="onebit-demo-")
        workdir = Path(tmp.name)
    else:
        workdir = Path(options.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        state = DemoState(options=options, workdir=workdir, echo=echo)
        for step in (STEPS if steps is None else steps):
            step(state)
        state.results["total_seconds"] = time.perf_counter() - t0
        state.results["options"] = dict(options.__dict__)
        return state.results
    finally:
        if tmp is not None:
            tmp.cleanup()


@click.command()
@click.option("--epochs", type=click.IntRange(min=1), default=DemoOptions.epochs, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=DemoOptions.batch_size, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=DemoOptions.lr, show_default=True)
@click.option("--limit-train", type=click.IntRange(min=1), default=DemoOptions.limit_train,
              show_default=True, help="Train on the first N of the 60000 MNIST training images.")
@click.option("--limit-test", type=click.IntRange(min=1), default=None, help="Evaluate on the first N test images.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: torch's).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Keep the checkpoint (and later artefacts) here instead of a temporary folder.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write every step's figures as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(epochs, batch_size, lr, limit_train, limit_test, threads, seed, workdir, device, json_path, quiet):
    """Train mnist-small on MNIST, print its summary and test accuracy (the pipeline demo)."""
    from onebit.train.loop import write_json

    opts = DemoOptions(epochs=epochs, batch_size=batch_size, lr=lr, limit_train=limit_train,
                       limit_test=limit_test, threads=threads, seed=seed, workdir=workdir, device=device,
                       progress=not quiet)
    try:
        results = run_demo(opts)
    except (OnebitError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    if json_path:
        write_json(json_path, results)
        click.echo(f"json: {os.fspath(json_path)}")
