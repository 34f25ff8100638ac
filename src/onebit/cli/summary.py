"""``onebit summary MODEL|CKPT|FILE.onebit``: per-layer parameters, packed memory and binary/float MACs.

A ``.onebit`` model file is summarized op by op from the file itself (torch-free
``onebit.runtime.opstats``): kept and dense bit-MACs (pruned ops carry a ``weight_mask``),
bytes per op and the file size.
"""
from __future__ import annotations

import json
import os

import click

from onebit.cli.extras import require
from onebit.errors import OnebitError


def _load_checkpoint(path: str):
    """Model of a plain or pruned checkpoint (a channel-pruned model is rebuilt shrunk)."""
    from onebit.prune.checkpoint import load_checkpoint

    model, _ = load_checkpoint(path)
    return model


def _is_model_file(path: str) -> bool:
    """A safetensors ``.onebit`` file (by name, or by its header: a checkpoint is a zip/pickle)."""
    if path.endswith(".onebit"):
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _summarize_model_file(path: str, json_path) -> None:
    from onebit.runtime import format as fmt
    from onebit.runtime import opstats
    from onebit.table import format_table

    try:
        mf = fmt.load(path)
    except OnebitError as e:
        raise click.ClickException(str(e)) from e
    stats = opstats.op_stats(mf)
    tot = opstats.totals(stats)
    size = os.path.getsize(path)
    name = (mf.metadata.get("producer", {}).get("model") or {}).get("name", "?")
    click.echo(f"Model file: {path} ({name}), input uint8 NHWC {'x'.join(map(str, mf.input_spec['shape']))}, "
               f"{mf.output_spec['shape'][0]} logits")
    click.echo("")
    click.echo(format_table(opstats.table_rows(stats)))
    click.echo("")
    click.echo(opstats.summary_line(tot, size))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"file": path, "bytes": size, "ops": stats, "totals": tot}, f, indent=2)
        click.echo(f"wrote {json_path}")


@click.command()
@click.argument("model")
@click.option("--width", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Channel width multiplier (model names only).")
@click.option("--float-twin", is_flag=True, help="Summarize the float twin (model names only).")
@click.option("--clip-block", is_flag=True, help="With BNN-Clip blocks (model names only).")
@click.option("--stem", default=None, help="Stem of residual models: cifar or imagenet.")
@click.option("--input-size", type=click.IntRange(min=1), default=None,
              help="Square input side (default: the model's own).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the per-layer rows and totals as JSON.")
def command(model, width, float_twin, clip_block, stem, input_size, json_path):
    """Print the summary of MODEL (a name from the zoo), of a checkpoint file CKPT or of a
    model file FILE.onebit."""
    if os.path.isfile(model) and _is_model_file(model):
        return _summarize_model_file(model, json_path)
    require("torch", "summary MODEL|CKPT")
    import onebit
    import onebit.models

    try:
        if os.path.isfile(model):
            net = _load_checkpoint(model)
        elif os.sep in model or model.endswith((".pt", ".pth", ".ckpt")):
            raise click.ClickException(f"checkpoint {model} does not exist")
        else:
            net = onebit.models.create(model, width=width, float_twin=float_twin,
                                       clip_block=clip_block, stem=stem, input_size=input_size)
        s = onebit.summary(net, input_size=input_size)
    except (OnebitError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(s.table())
    if json_path:
        with open(json_path, "w") as f:
            json.dump(s.to_json(), f, indent=2)
        click.echo(f"wrote {json_path}")
