"""``onebit demo``: the whole pipeline on MNIST, one step after another.

The demo is a list of steps (``STEPS``); each takes the shared :class:`DemoState`, does one
thing, prints what it did and records its figures in ``state.results`` (which ``--json``
writes). Later stages of the pipeline (export, engine evaluation, latency table) add their own
step functions to ``STEPS`` after the training ones, without touching these.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click

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


def step_engine(state: DemoState) -> None:
    """Export, evaluation through the engine (== integer simulation), latency vs the PyTorch
    float twin and the final table: the steps of ``onebit.convert.demo_steps`` (imported here,
    on use, so that the CLI starts without torch)."""
    from onebit.convert.demo_steps import STEPS as CONVERT_STEPS

    for step in CONVERT_STEPS:
        step(state)


STEPS: list[Callable[[DemoState], None]] = [step_train, step_summary, step_report, step_engine]


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
