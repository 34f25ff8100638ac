"""The ``onebit`` command line (click).

Each subcommand lives in its own module ``onebit/cli/<name>.py`` that defines ``command``
(a ``click.Command``); modules that exist are registered here, in this order.
"""
from __future__ import annotations

import importlib
import importlib.util

import click

SUBCOMMANDS = ("train", "summary", "prune", "export", "eval", "robustness", "bench", "demo")


@click.group()
@click.version_option(package_name="onebit")
def main() -> None:
    """onebit: train, prune, export and run binary neural networks."""


for _name in SUBCOMMANDS:
    if importlib.util.find_spec(f"onebit.cli.{_name}") is not None:
        main.add_command(importlib.import_module(f"onebit.cli.{_name}").command, _name)
