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
              help="Write the op list (type, output kind, accumulator bound/bits) as JSON.")
def command(checkpoint, output, dataset, json_path):
    """Convert CHECKPOINT (from `onebit train`) to a .onebit model file (docs/format.md §7)."""
    import json

    from onebit.convert import ConversionError, export
    from onebit.errors import OnebitError
    from onebit.runtime import format as fmt
    from onebit.table import format_table
    from onebit.train import load_checkpoint

    try:
        model, ckpt = load_checkpoint(checkpoint)
        ds = dataset or ckpt.get("dataset") or getattr(model, "dataset_hint", None)
        if isinstance(ds, dict):
            ds = ds.get("name")
        path = export(model, output, dataset=ds)
    except (ConversionError, OnebitError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    mf = fmt.load(path)
    rows = []
    for op in mf.ops:
        v = mf.values[op.output]
        rows.append({"op": op.name, "type": op.type, "output": v.kind, "shape": "x".join(map(str, v.shape)),
                     "K": op.attrs.get("accumulator_bound", ""), "acc bits": op.attrs.get("accumulator_bits", "")})
    click.echo(format_table(rows))
    size = os.path.getsize(path)
    click.echo(f"wrote {path}: {size} bytes, {len(mf.ops)} ops, input uint8 NHWC "
               f"{'x'.join(map(str, mf.input_spec['shape']))} ({mf.input_spec.get('dataset')}), "
               f"{mf.output_spec['shape'][0]} logits")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"file": path, "bytes": size, "ops": rows}, f, indent=1)
