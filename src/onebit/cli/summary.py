"""``onebit summary MODEL|CKPT``: per-layer parameters, packed memory and binary/float MACs."""
from __future__ import annotations

import json
import os

import click

from onebit.errors import OnebitError


def _load_checkpoint(path: str):
    """Model of a checkpoint: ``onebit.train.load_checkpoint`` when present, else the agreed dict."""
    try:
        from onebit.train import load_checkpoint
    except ImportError:
        load_checkpoint = None
    if load_checkpoint is not None:
        model, _ = load_checkpoint(path)
        return model
    import torch

    import onebit.models

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "state_dict" not in ckpt:
        raise click.ClickException(f"{path} is not a onebit checkpoint (needs model_config and state_dict)")
    cfg = dict(ckpt["model_config"])
    model = onebit.models.create(cfg.pop("name"), **cfg)
    model.load_state_dict(ckpt["state_dict"])
    return model


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
    """Print the summary of MODEL (a name from the zoo) or of a checkpoint file CKPT."""
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
