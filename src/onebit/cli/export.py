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
def command(checkpoint, output, dataset, json_path):
    """Convert CHECKPOINT (from `onebit train`) to a .onebit model file (docs/format.md §7)."""
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
        path = export(model, output, dataset=ds)
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
    click.echo(opstats.summary_line(mf, tot, size))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"file": path, "bytes": size, "ops": stats, "totals": tot}, f, indent=1)
