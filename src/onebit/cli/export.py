"""``onebit export CKPT -o model.onebit``: convert a training checkpoint into one engine file."""
from __future__ import annotations

import os

import click


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), required=True,
              help="The .onebit file to write.")
@click.option("--dataset", default=None, help="Dataset whose normalization the model expects "
              "(default: the checkpoint's dataset).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the op list (type, output kind, accumulator bound/bits, kept and dense bit-MACs, "
                   "bytes) and the totals as JSON.")
@click.option("--qat-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Quantization-aware fine-tuning before the export: this many batches of the "
                   "dataset's training split through the integer simulation's arithmetic (int8 first "
                   "layer and zero point, round-half-up clip blocks, int8 shortcut weights; "
                   "BatchNorm statistics frozen), see onebit.convert.qat.")
@click.option("--qat-lr", type=click.FloatRange(min=0, min_open=True), default=1e-5, show_default=True,
              help="Adam learning rate of the QAT fine-tuning.")
@click.option("--qat-batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--qat-distill", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Weight of a KL term pulling the QAT model towards the float model's softmax.")
@click.option("--qat-train-binary", is_flag=True,
              help="QAT also trains the latent binary weights (default: float parameters only).")
@click.option("--qat-checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Also save the fine-tuned model as a checkpoint (same keys as the input, plus 'qat').")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch.set_num_threads (QAT).")
@click.option("--float-boundary", is_flag=True,
              help="Run the first convolution in float32 on the normalized image (not int8): the engine "
                   "then follows the float model to float32 rounding up to the first sign.")
def command(checkpoint, output, dataset, json_path, qat_steps, qat_lr, qat_batch_size, qat_distill,
            qat_train_binary, qat_checkpoint, threads, float_boundary):
    """Convert CHECKPOINT (from `onebit train`) to a .onebit model file (docs/format.md §7).

    With --qat-steps N the model is first fine-tuned for N steps so that it computes what the
    engine computes (quantization-aware; the engine then agrees better with the float model).
    """
    import json

    from onebit.convert import ConversionError, export
    from onebit.errors import OnebitError
    from onebit.runtime import format as fmt
    from onebit.table import format_table
    from onebit.prune.checkpoint import load_checkpoint  # plain or pruned (shrunk channels, masks)

    try:
        model, ckpt = load_checkpoint(checkpoint)
        ds = dataset or ckpt.get("dataset") or getattr(model, "dataset_hint", None)
        if isinstance(ds, dict):
            ds = ds.get("name")
        if qat_steps:
            model = _qat(model, ckpt, ds, qat_steps, qat_lr, qat_batch_size, qat_distill, qat_train_binary,
                         qat_checkpoint, threads)
        elif qat_checkpoint:
            raise click.UsageError("--qat-checkpoint needs --qat-steps N (N >= 1)")
        path = export(model, output, dataset=ds, float_boundary=float_boundary)
    except (ConversionError, OnebitError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    from onebit.runtime import opstats

    mf = fmt.load(path)
    stats = opstats.op_stats(mf)
    tot = opstats.totals(stats)
    click.echo(format_table(opstats.table_rows(stats)))
    size = os.path.getsize(path)
    click.echo(f"wrote {path}: {size} bytes, {len(mf.ops)} ops, input uint8 NHWC "
               f"{'x'.join(map(str, mf.input_spec['shape']))} ({mf.input_spec.get('dataset')}), "
               f"{mf.output_spec['shape'][0]} logits")
    click.echo(opstats.summary_line(tot, size))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"file": path, "bytes": size, "ops": stats, "totals": tot}, f, indent=1)


def _qat(model, ckpt, ds, steps, lr, batch_size, distill, train_binary, out, threads):
    """Fine-tune with onebit.convert.qat on the training split of ``ds``; optionally save it."""
    import time

    import torch

    from onebit.convert import qat
    from onebit.data import info, make_loader

    if threads:
        torch.set_num_threads(threads)
    d = info(ds)
    loader = make_loader(ds, "train", batch_size, train=True, seed=0)
    t0 = time.perf_counter()
    tuned = qat.finetune(model, loader, steps, mean=d.mean, std=d.std, lr=lr, train_binary=train_binary,
                         distill=distill, log_every=max(1, steps // 5), echo=click.echo)
    losses = tuned.qat_losses
    click.echo(f"[qat] {steps} steps in {time.perf_counter() - t0:.1f} s; mean loss first/last "
               f"{min(50, steps)} steps: {sum(losses[:50]) / len(losses[:50]):.4f} / "
               f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
    if out:
        from onebit.train.checkpoint import save_checkpoint

        new = dict(ckpt, state_dict=tuned.state_dict(),
                   qat={"steps": steps, "lr": lr, "batch_size": batch_size, "train_binary": train_binary,
                        "distill": distill, "losses": losses})
        save_checkpoint(out, new)
        click.echo(f"[qat] checkpoint: {out}")
    return tuned
