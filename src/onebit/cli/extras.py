"""Optional dependencies of the CLI: ``pip install onebit`` runs model files (numpy, no torch);
training, pruning, export and the integer simulation need ``pip install 'onebit[train]'``."""
from __future__ import annotations

import importlib.util

import click

# the modules of the ``train`` extra that a command imports (pyproject.toml)
TRAIN_MODULES = ("torch", "matplotlib", "PIL")


def require_train(what: str, modules=TRAIN_MODULES) -> None:
    """Fail with one clear line (non-zero exit) when a module of the ``train`` extra is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f"{what} needs the 'train' extra ({', '.join(missing)} not installed): "
                                   f"pip install 'onebit[train]'")
