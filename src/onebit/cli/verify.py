"""``onebit verify CHECKPOINT``: float-latent vs integer simulation vs engine on every ISA."""
from __future__ import annotations

import json

import click

from onebit.cli.extras import require


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N test images only.")
@click.option("--exact", type=click.IntRange(min=0), default=0, metavar="N", show_default=True,
              help="Also compare every intermediate value of engine and simulation (equality) on the first N images.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the record as JSON.")
def command(checkpoint, limit, exact, json_path):
    """Accuracy of a trained CHECKPOINT through PyTorch (float latent weights), the integer
    simulation and the engine on every ISA this CPU has; exits 1 unless the engine and the
    simulation agree on every argmax."""
    require("torch", "verify")
    from onebit.convert.verify import verify_checkpoint
    from onebit.errors import OnebitError

    try:
        rec = verify_checkpoint(checkpoint, limit, exact=exact, echo=click.echo)
    except (OnebitError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    if json_path:
        with open(json_path, "w") as f:
            json.dump(rec, f, indent=1)
    if not all(v["argmax_agreement_with_simulation"] == 1.0 for v in rec["engine"].values()):
        raise click.ClickException("the engine and the integer simulation disagree (see the record above)")
