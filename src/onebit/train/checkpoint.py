"""Checkpoints: a ``torch.save`` dict that carries everything needed to rebuild and resume.

Keys (agreed between the parts): ``model_config`` (the model's ``onebit_config``, so
``onebit.models.create(**model_config)`` rebuilds it), ``state_dict``, ``dataset``,
``train_config``, ``metrics``, ``epoch`` (epochs completed), ``optimizer``, ``scheduler``,
``onebit_version``; plus ``rng`` (torch/NumPy/Python generator states, so a resumed run draws
the same random numbers as an uninterrupted one). Everything is plain Python or tensors so
the file loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from onebit.errors import OnebitError

REQUIRED_KEYS = ("model_config", "state_dict", "dataset", "train_config", "metrics", "epoch",
                 "optimizer", "scheduler", "onebit_version")


class CheckpointError(OnebitError, ValueError):
    """A checkpoint file is missing, unreadable, or lacks what it must carry."""


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": _py_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    # .cpu(): a checkpoint read with map_location="cuda" moves these byte tensors too
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    random.setstate(_plain_to_py_state(state["python"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda"]])


def _py_state_to_plain(s):
    version, internal, gauss = s
    return [version, list(internal), gauss]


def _plain_to_py_state(p):
    version, internal, gauss = p
    return (version, tuple(internal), gauss)


def save_checkpoint(path: str | os.PathLike, ckpt: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so an interrupted run never leaves half a file."""
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint lacks required key(s): {', '.join(missing)}")
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint dict (no model built)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt or foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a onebit checkpoint (holds {type(ckpt).__name__}, not a dict)")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not a onebit checkpoint: missing key(s) {', '.join(missing)}")
    if not isinstance(ckpt["model_config"], dict) or "name" not in ckpt["model_config"]:
        raise CheckpointError(f"{path}: model_config must be a dict with a 'name'")
    return ckpt


def build_model(model_config: dict[str, Any]) -> torch.nn.Module:
    import onebit.models

    cfg = dict(model_config)
    name = cfg.pop("name")
    return onebit.models.create(name, **cfg)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the model of a checkpoint: returns ``(model, ckpt_dict)``, model in eval mode."""
    ckpt = read_checkpoint(path, map_location)
    model = build_model(ckpt["model_config"])
    _materialize_none_buffers(model, ckpt["state_dict"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: state_dict does not fit model {ckpt['model_config']}: {e}") from e
    model.eval()
    return model, ckpt


def _materialize_none_buffers(model: torch.nn.Module, state_dict: dict[str, Any]) -> None:
    """Give buffers registered as None (e.g. an unset ``weight_mask``) a tensor when the saved
    state holds one, so a pruned model's mask loads instead of failing as an unexpected key."""
    modules = dict(model.named_modules())
    for key, value in state_dict.items():
        owner, _, name = key.rpartition(".")
        mod = modules.get(owner)
        if mod is not None and name in mod._buffers and mod._buffers[name] is None:
            mod._buffers[name] = torch.empty_like(value)
