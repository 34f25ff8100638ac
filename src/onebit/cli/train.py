"""``onebit train MODEL --dataset NAME ...``: train a zoo model with the default recipe."""
from __future__ import annotations

import click

from onebit.errors import OnebitError


def _epoch_rows(history):
    return [{"epoch": h["epoch"], "train_loss": h["train_loss"], "train_acc": h["train_accuracy"],
             "test_loss": h.get("test_loss"), "test_acc": h.get("test_accuracy"),
             "img/s": round(h["images_per_second"]), "seconds": round(h["train_seconds"], 1)}
            for h in history]


@click.command()
@click.argument("model")
@click.option("--dataset", required=True, help="mnist, fashion-mnist, cifar10 or imagenette.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Peak learning rate of Adam (linear warmup, then cosine to 0).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint path (written after every epoch).")
@click.option("--width", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Channel width multiplier.")
@click.option("--clip-block", is_flag=True, help="Insert BNN-Clip blocks (int8 data between blocks).")
@click.option("--float-twin", is_flag=True, help="Same architecture with float layers.")
@click.option("--stem", default=None, help="Stem variant for residual models (e.g. cifar, imagenet).")
@click.option("--input-bits", default=None,
              help="CBNN bit-plane input: K (the K most significant planes per colour) or a "
                   "comma-separated list of plane ids c*8+b (b=0 the LSB).")
@click.option("--device", default="auto", show_default=True,
              help="auto (cuda when available, else cpu), cpu, cuda or cuda:N.")
@click.option("--resident/--streamed", default=None,
              help="Hold the decoded dataset on the device and augment there (default: on for cuda), "
                   "or stream batches from host memory (default on cpu). Same batches either way.")
@click.option("--bf16/--no-bf16", default=None,
              help="bf16 autocast of the forward pass (default: on for cuda, off on cpu; "
                   "models with --clip-block always train in float32).")
@click.option("--channels-last", is_flag=True, help="Model and batches in NHWC memory order.")
@click.option("--compile", "compile_", is_flag=True, help="Run the forward pass through torch.compile.")
@click.option("--init", type=click.Path(dir_okay=False), default=None,
              help="Start from this checkpoint's weights and architecture (plain or pruned by "
                   "`onebit prune`): fine-tuning.")
@click.option("--budget-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Fit the number of epochs (at most --epochs) to this many seconds of wall clock "
                   "from the start of the command, from a measured step time.")
@click.option("--nondeterministic", is_flag=True,
              help="Let cuDNN benchmark and pick the fastest (non-deterministic) algorithms.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write config, per-epoch metrics, test_accuracy and train_seconds as JSON.")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue from a checkpoint written by --out.")
@click.option("--limit-train", type=click.IntRange(min=1), default=None, help="Use the first N training images.")
@click.option("--limit-test", type=click.IntRange(min=1), default=None, help="Use the first N test images.")
@click.option("--size", type=click.IntRange(min=1), default=None, help="Input resolution (Imagenette).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch.set_num_threads.")
@click.option("--stop-after", type=click.IntRange(min=1), default=None,
              help="Stop after this many epochs (schedule still spans --epochs); continue with --resume.")
@click.option("--warmup", type=click.FloatRange(0, 1, max_open=True), default=0.03, show_default=True,
              help="Warmup length as a fraction of all steps.")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="L2 on float weights only (never on binary latent weights).")
@click.option("--no-augment", is_flag=True, help="Disable training augmentation.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(model, dataset, epochs, batch_size, lr, out, width, clip_block, float_twin, stem, input_bits, device,
            resident, bf16, channels_last, compile_, init, budget_s, nondeterministic, seed, json_path, resume, limit_train, limit_test, size, threads, stop_after, warmup, label_smoothing,
            weight_decay, no_augment, quiet):
    """Train MODEL (a name from onebit.models.list_models()) on a dataset.

    Default recipe: Adam, linear warmup then cosine schedule, no weight decay on latent binary
    weights, latent weights clipped to [-1, 1] after each step, validation after each epoch.
    Under torchrun it trains with DistributedDataParallel (rank 0 logs and checkpoints).
    """
    from onebit.table import format_table
    from onebit.train import TrainConfig, train

    if budget_s is not None:
        from onebit.train.budget import process_seconds

        # the budget counts from the start of the command: imports are part of the wall clock
        budget_s = max(1e-3, budget_s - (process_seconds() or 0.0))
    try:
        if input_bits is not None:
            from onebit.bitplanes import parse_input_bits

            try:
                input_bits = parse_input_bits(input_bits)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--input-bits") from e
        config = TrainConfig(model=model, dataset=dataset, epochs=epochs, batch_size=batch_size, lr=lr,
                             out=out, width=width, clip_block=clip_block, float_twin=float_twin,
                             stem=stem, input_bits=input_bits, device=device, seed=seed, json_path=json_path, resume=resume,
                             limit_train=limit_train, limit_test=limit_test, size=size, threads=threads, stop_after=stop_after,
                             warmup=warmup, label_smoothing=label_smoothing, weight_decay=weight_decay,
                             augment=not no_augment, progress=not quiet, resident=resident, bf16=bf16,
                             channels_last=channels_last, compile=compile_,
                             deterministic=not nondeterministic, init=init, budget_s=budget_s)
        result = train(config)
    except (OnebitError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    if result.environment.get("world_size", 1) > 1 and not result.history:
        return  # non-zero ranks print nothing
    click.echo(format_table(_epoch_rows(result.history)))
    env = result.environment
    click.echo(f"test_accuracy {result.test_accuracy:.4f}  train_seconds {result.train_seconds:.1f}  "
               f"device {env['device']}{' (' + env['gpu'] + ')' if 'gpu' in env else ''}  "
               f"torch_threads {env['torch_threads']}")
    if "accel" in env:
        a = env["accel"]
        click.echo(f"data {'resident on the device' if a['resident'] else 'streamed from the host'}, "
                   f"bf16 {a['bf16_reason']}, channels_last {'on' if a['channels_last'] else 'off'}, "
                   f"compile {'on' if a['compile'] else 'off'}")
    if "budget" in env:
        b = env["budget"]
        click.echo(f"budget {b['budget_s']:.0f} s: {b['epochs']} epoch(s) at {b['step_seconds'] * 1e3:.1f} ms/step "
                   f"(at most {b['max_epochs']})")
    if out:
        click.echo(f"checkpoint: {out}")
    if json_path:
        click.echo(f"json: {json_path}")
