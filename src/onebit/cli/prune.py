"""``onebit prune CKPT ...``: prune a trained checkpoint to a binary-ops target."""
from __future__ import annotations

import json
from pathlib import Path

import click

from onebit.errors import OnebitError


def _target(value: str) -> float:
    v = value.strip()
    frac = float(v[:-1]) / 100 if v.endswith("%") else float(v)
    if not 0.0 <= frac < 1.0:
        raise click.BadParameter(f"must be a fraction in [0, 1) or a percentage, got {value!r}")
    return frac


@click.command()
@click.argument("ckpt", type=click.Path(exists=True, dir_okay=False))
@click.option("--method", type=click.Choice(["latent", "flip", "random", "bitslice"]), default="latent",
              show_default=True,
              help="Score: latent-weight magnitude, weight-flip frequency, or random; bitslice: prune the input "
                   "bit planes of a model trained with --input-bits (CBNN, see --max-loss).")
@click.option("--max-loss", type=click.FloatRange(0, 100, max_open=True), default=1.0, show_default=True,
              help="--method bitslice: accuracy budget in points; the least sensitive planes are pruned while "
                   "their cumulative validation loss stays within it.")
@click.option("--noise-seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="--method bitslice: random +-1 draws per sensitivity measurement.")
@click.option("--granularity", type=click.Choice(["weight", "word", "block", "channel"]), default="weight",
              show_default=True, help="Unstructured weights, 64-channel packed words, blocks of 8 output "
                                      "channels x one word x one tap (the engine's AVX2 tile), or whole filters.")
@click.option("--channel-multiple", type=click.IntRange(min=1), default=1, show_default=True,
              help="--granularity channel: every pruned layer keeps a multiple of this many output channels "
                   "(or all of them); 64 = the engine's packed word, so the next layer loses whole words "
                   "(the measured speed-up of channel pruning needs it).")
@click.option("--target-bops", "target", default="0.4", show_default=True,
              help="Fraction of binary ops to remove (0.4 or 40%).")
@click.option("--sensitivity", is_flag=True,
              help="Sweep per-layer sensitivity on validation data and allocate per-layer ratios.")
@click.option("--sensitivity-solver", "solver", type=click.Choice(["greedy", "dp"]), default="greedy",
              show_default=True, help="--sensitivity: greedy allocation or dynamic programming over the ratio grid.")
@click.option("--allocation", type=click.Choice(["uniform", "global", "flip"]), default=None,
              help="Per-layer ratio rule without --sensitivity (default: flip for --method flip, else uniform).")
@click.option("--finetune-epochs", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Fine-tuning epochs after pruning (fractions allowed).")
@click.option("--iterations", type=click.IntRange(min=1), default=1, show_default=True,
              help="Iterative prune-and-fine-tune stages (the fine-tuning is split over them).")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True,
              help="Pruned checkpoint to write.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the record as JSON.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for PNG plots (sensitivity curves, accuracy vs binary ops).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True,
              help="Adam learning rate: peak of the cosine fine-tuning schedule, constant in the flip-counting interval.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--flip-steps", type=click.IntRange(min=1), default=200, show_default=True,
              help="Training steps of the flip-counting interval (--method flip).")
@click.option("--flip-threshold", type=click.IntRange(min=0), default=0, show_default=True,
              help="A weight flipping more than this many times is insensitive.")
@click.option("--flip-order", type=click.Choice(["frequent", "rare"]), default="frequent", show_default=True,
              help="--method flip: prune the frequently flipping weights first (Li & Ren) or the rarely flipping ones.")
@click.option("--val-size", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Validation samples (tail of the training split) for the sensitivity sweep.")
@click.option("--limit-train", type=click.IntRange(min=1), default=None, help="Fine-tune on the first N images.")
@click.option("--limit-test", type=click.IntRange(min=1), default=None, help="Evaluate on the first N test images.")
@click.option("--max-ratio", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Largest fraction of any one layer's groups that may be pruned.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch.set_num_threads.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def command(ckpt, method, max_loss, noise_seeds, granularity, channel_multiple, target, sensitivity, solver, allocation, finetune_epochs,
            iterations, out, json_path, plot_dir, lr, batch_size, flip_steps, flip_threshold, flip_order, val_size,
            limit_train, limit_test, max_ratio, seed, threads, quiet):
    """Prune the binary layers of checkpoint CKPT so it needs TARGET fewer binary ops.

    With --method bitslice, the input bit planes of a bit-plane model are pruned instead (CBNN,
    Li and Ren): per-plane and cumulative sensitivity on validation data, the planes kept for
    the --max-loss budget, the first layer shrunk, then the optional fine-tune.

    The float first layer and float classifier are never pruned. Binary ops are bit-MACs of
    the binary layers (batch 1), the convention of `onebit summary`.
    """
    import torch

    from onebit.prune.pipeline import prune_checkpoint
    from onebit.table import format_table

    if threads is not None:
        torch.set_num_threads(threads)
    if method == "bitslice":
        return _bitslice(ckpt, max_loss / 100, noise_seeds, finetune_epochs, out, json_path, plot_dir, lr,
                         batch_size, val_size, limit_train, limit_test, seed, quiet)
    if channel_multiple > 1 and granularity != "channel":
        raise click.UsageError(f"--channel-multiple {channel_multiple} needs --granularity channel "
                               f"(it sets kept output channel counts), not {granularity!r}")
    try:
        rec = prune_checkpoint(
            ckpt, method=method, granularity=granularity, target=_target(target), sensitivity=sensitivity,
            finetune_epochs=finetune_epochs, out=out, allocation=allocation, iterations=iterations,
            val_size=val_size, flip_steps=flip_steps, flip_threshold=flip_threshold, flip_order=flip_order, lr=lr,
            batch_size=batch_size, limit_train=limit_train, limit_test=limit_test, seed=seed, max_ratio=max_ratio,
            solver=solver, plot_dir=plot_dir, progress=not quiet, channel_multiple=channel_multiple)
    except (OnebitError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    kept = rec["pruned"].get("channels") or {}
    rows = [{"layer": n, "ratio": v["ratio"], **({"channels": kept.get(n, "all")} if kept else {}),
             "weights": v["weights"], "live": v["live_weights"], "dense_bops": v["dense_bops"], "bops": v["bops"]}
            for n, v in rec["pruned"]["layers"].items()]
    click.echo(format_table(rows, floatfmt={"ratio": ".3f"}))
    b, p = rec["baseline"], rec["pruned"]
    click.echo(f"binary ops {b['bops']} -> {p['bops']} ({p['reduction']:.1%} fewer, target {rec['target']:.0%})")
    click.echo(f"test accuracy {b['test_accuracy']:.4f} -> {p['test_accuracy']:.4f} "
               f"(before fine-tune {p['test_accuracy_before_finetune']:.4f})  seconds {rec['seconds']:.1f}")
    click.echo(f"checkpoint: {out}")
    _write_json(rec, json_path)
    for path in rec.get("plots", []):
        click.echo(f"plot: {path}")


def _write_json(rec, json_path):
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(rec, indent=2, default=str) + "\n")
        click.echo(f"json: {json_path}")


def _bitslice(ckpt, max_loss, seeds, finetune_epochs, out, json_path, plot_dir, lr, batch_size, val_size,
              limit_train, limit_test, seed, quiet):
    from onebit.prune.bitslice import prune_checkpoint_bitslice
    from onebit.table import format_table

    try:
        rec = prune_checkpoint_bitslice(
            ckpt, max_loss=max_loss, seeds=seeds, finetune_epochs=finetune_epochs, out=out, lr=lr,
            batch_size=batch_size, val_size=val_size, limit_train=limit_train, limit_test=limit_test, seed=seed,
            plot_dir=plot_dir, progress=not quiet)
    except (OnebitError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    s = rec["sensitivity"]
    cum = dict(zip(s["order"], [s["baseline"] - a for a in s["cumulative"]]))  # order[:i+1] randomized
    rows = [{"plane": p, "channel": p // 8, "bit": p % 8, "drop": s["baseline"] - a,
             "cumulative_drop": cum.get(p), "kept": p in rec["pruned"]["planes"]}
            for p, a in zip(s["planes"], s["accuracy"])]
    click.echo(format_table(rows, floatfmt={"drop": ".4f", "cumulative_drop": ".4f"}))
    b, p = rec["baseline"], rec["pruned"]
    click.echo(f"planes {len(b['planes'])} -> {len(p['planes'])} ({p['planes_text']}), budget {max_loss:.2%}")
    click.echo(f"test accuracy {b['test_accuracy']:.4f} -> {p['test_accuracy']:.4f} "
               f"(before fine-tune {p['test_accuracy_before_finetune']:.4f})  seconds {rec['seconds']:.1f}")
    click.echo(f"checkpoint: {out}")
    _write_json(rec, json_path)
    for path in rec.get("plots", []):
        click.echo(f"plot: {path}")
