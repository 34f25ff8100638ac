"""The ``onebit`` command line (click). Subcommands live in their own modules."""
from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="onebit")
def main() -> None:
    """onebit: train, prune, export and run binary neural networks."""
