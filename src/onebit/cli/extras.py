"""Optional dependencies of the CLI: ``pip install onebit`` runs model files (numpy, no torch);
training, pruning, export, the integer simulation and the demo need the ``train`` extra
(``pip install 'onebit[train]'``: torch, pillow, matplotlib; pyproject.toml); ``onebit import``
needs the ``larq`` extra (torch, h5py)."""
from __future__ import annotations

import click

# import name -> the extra that installs it
EXTRA_OF = {"torch": "train", "PIL": "train", "matplotlib": "train", "h5py": "larq"}
# commands whose own extra also brings torch
COMMAND_EXTRA = {"import": "larq"}


def missing_extra(error: ModuleNotFoundError, what: str | None = None) -> str | None:
    """The one-line message for a module of an extra that is not installed, else None."""
    root = (error.name or "").split(".")[0]
    extra = EXTRA_OF.get(root)
    if extra is None:
        return None
    extra = COMMAND_EXTRA.get(what, extra)
    who = f"onebit {what}" if what else "this command"
    return f"{who} needs {root}, which is not installed: pip install 'onebit[{extra}]'"


def require(module: str, what: str) -> None:
    """Fail now (one line, non-zero exit) when ``module`` of an extra is not importable, before
    a command starts work that would need it at the end."""
    try:
        __import__(module)
    except ModuleNotFoundError as e:
        message = missing_extra(e, what)
        if message is None:
            raise
        raise click.ClickException(message) from e
