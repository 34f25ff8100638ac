"""The ``onebit`` command line (click).

Each subcommand lives in its own module ``onebit/cli/<name>.py`` that defines ``command``
(a ``click.Command``); modules that exist are registered here, in this order. Modules import
torch only inside the commands that need it: ``pip install onebit`` runs model files
(``eval``, ``bench``, ``summary FILE.onebit``); a command that needs the ``train`` extra and
does not find it says so in one line (:mod:`onebit.cli.extras`).
"""
from __future__ import annotations

import importlib
import importlib.util

import click

from onebit.cli.extras import missing_extra

SUBCOMMANDS = ("train", "summary", "prune", "export", "import", "eval", "verify", "robustness", "bench", "demo")
# module name of a subcommand whose name is a Python keyword
_MODULES = {"import": "import_"}


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as e:
            message = missing_extra(e, ctx.invoked_subcommand)
            if message is None:
                raise
            raise click.ClickException(message) from e


@click.group(cls=_Group)
@click.version_option(package_name="onebit")
def main() -> None:
    """onebit: train, prune, export and run binary neural networks."""


for _name in SUBCOMMANDS:
    _mod = _MODULES.get(_name, _name)
    if importlib.util.find_spec(f"onebit.cli.{_mod}") is not None:
        main.add_command(importlib.import_module(f"onebit.cli.{_mod}").command, _name)
