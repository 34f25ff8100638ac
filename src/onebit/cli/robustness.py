"""``onebit robustness MODEL.onebit --dataset D --flips N[,N...]``: accuracy under weight bit flips."""
from __future__ import annotations

import json
from pathlib import Path

import click

from onebit.errors import OnebitError


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--dataset", required=True, help="mnist, fashion-mnist, cifar10 or imagenette (test split).")
@click.option("--flips", required=True, help="Flip counts, comma-separated (e.g. 1,10,100); nested per trial.")
@click.option("--mode", type=click.Choice(["random", "progressive"]), default="random", show_default=True,
              help="random: uniform distinct bits; progressive: the bit-flip attack's progressive bit "
                   "search on --checkpoint, carried to the file.")
@click.option("--kind", type=click.Choice(["binary", "thresholds", "int8", "all"]), default="binary",
              show_default=True, help="Which stored bits to flip (all: each kind separately).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--trials", type=click.IntRange(min=1), default=3, show_default=True,
              help="Independent random draws per flip count (random mode).")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The PyTorch checkpoint MODEL was exported from (progressive mode).")
@click.option("--attack-batch", type=click.IntRange(min=1), default=128, show_default=True,
              help="Training images the progressive search computes its loss on.")
@click.option("--twin", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The BNN's float twin (the same model trained with --float-twin): its weights are "
                   "quantized to int8 and get the same flips (counts, seeds, attack batch), in PyTorch.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N test images only.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Engine threads.")
@click.option("--isa", default=None, help="Force an engine ISA (scalar, avx2, avx512).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write robustness.json and robustness.png here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(model, dataset, flips, mode, kind, seed, trials, checkpoint, attack_batch, twin, limit, threads, isa,
            out_dir, quiet):
    """Flip bits of MODEL's stored weights (in copies) and measure the engine's accuracy.

    Kinds: binary weights (real-channel bits, kept weights of pruned layers), thresholds (the
    32 bits of each int32 threshold of a bits output stage), int8 weights (first layer and
    int8 convolutions; a flip onto -128 is not taken). Every flipped file passes the loader's checks.
    With --twin, the int8-quantized float twin gets the same flips on all its int8 weights
    (random: uniform bits; progressive: the bit-flip attack's search on them), side by side.
    """
    from tqdm import tqdm

    from onebit.robustness import parse_flips, parse_kinds, study
    from onebit.robustness.int8_twin import twin_study
    from onebit.robustness.report import plot, table_rows
    from onebit.table import format_table

    try:
        counts = parse_flips(flips)
        kinds = parse_kinds(kind)
        steps = counts[-1] if mode == "progressive" else len(counts) * trials * len(kinds)
        with tqdm(total=steps, desc=mode, disable=quiet, leave=False) as bar:
            rec = study(model, dataset, counts, mode=mode, kinds=kinds, seed=seed, trials=trials, limit=limit,
                        threads=threads, isa=isa, checkpoint=checkpoint, attack_batch=attack_batch,
                        progress=bar.update)
        if twin is not None:
            steps = counts[-1] if mode == "progressive" else len(counts) * trials
            with tqdm(total=steps, desc=f"{mode} int8 twin", disable=quiet, leave=False) as bar:
                rec["twin"] = twin_study(twin, dataset, counts, mode=mode, seed=seed, trials=trials, limit=limit,
                                         threads=threads, attack_batch=attack_batch,
                                         bnn_checkpoint=checkpoint, progress=bar.update)
    except (OnebitError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    floatfmt = {"accuracy_%": ".2f", "min_%": ".2f", "max_%": ".2f", "drop_pt": ".2f"}
    click.echo(format_table(table_rows(rec), floatfmt=floatfmt))
    click.echo(f"{rec['images']} {dataset} test images, {mode} flips, {rec['seconds']:.1f} s")
    if twin is not None:
        t = rec["twin"]
        click.echo(f"int8 twin (float twin {100 * t['float_accuracy']:.2f}%, PyTorch):")
        click.echo(format_table(table_rows(t), floatfmt=floatfmt))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "robustness.json").write_text(json.dumps(rec, indent=1) + "\n")
        click.echo(f"json: {out / 'robustness.json'}")
        click.echo(f"plot: {plot(rec, out / 'robustness.png')}")

