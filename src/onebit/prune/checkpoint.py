"""Pruned checkpoints: the training checkpoint's keys (``model_config``, ``state_dict``,
``dataset``, ``train_config``, ``metrics``, ``epoch``, ``optimizer``, ``scheduler``,
``onebit_version``) plus ``prune_info``.

``prune_info`` = ``{"method", "granularity", "target", "ratios", "base_bops", "bops",
"reduction", "channels"?, "input_size"}``. Masks (weight/word granularity) travel in the
``state_dict`` as ``weight_mask`` buffers. For channel granularity the layers are physically
smaller than ``create(**model_config)`` builds them: ``channels`` maps each shrunk layer to its
kept output channels, and :func:`load_checkpoint` / :func:`rebuild` replay that plan
(``onebit.prune.shrink.apply_plan``) on the freshly built model before loading the weights.
The optimizer and scheduler states are dropped (they no longer match pruned parameters).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

import onebit
from onebit.prune.layers import PruneError, ensure_mask_buffers
from onebit.prune.shrink import apply_plan


def rebuild(model_config: dict, prune_info: dict | None) -> nn.Module:
    """Build the (possibly shrunk) architecture of a pruned checkpoint, weights untrained."""
    from onebit.models import create

    cfg = dict(model_config)
    model = create(cfg.pop("name"), **cfg)
    if prune_info and prune_info.get("channels"):
        apply_plan(model, prune_info["channels"], prune_info.get("input_size"))
    return model


def load_checkpoint(path: str | os.PathLike, map_location="cpu"):
    """``(model, ckpt)`` for a plain or pruned checkpoint; the model is in eval mode."""
    from onebit.train import read_checkpoint

    ckpt = read_checkpoint(path, map_location)
    model = rebuild(ckpt["model_config"], ckpt.get("prune_info"))
    ensure_mask_buffers(model, ckpt["state_dict"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise PruneError(f"{path}: state_dict does not fit the rebuilt model: {exc}") from exc
    model.eval()
    return model, ckpt


def save_pruned(path: str | os.PathLike, model: nn.Module, base: dict, prune_info: dict,
                metrics: dict | None = None) -> Path:
    """Write a pruned checkpoint derived from the training checkpoint ``base``."""
    from onebit.train import save_checkpoint

    ckpt = {k: v for k, v in base.items() if k not in ("optimizer", "scheduler", "rng")}
    previous = base.get("prune_info") or {}
    if previous:
        # pruning an already pruned checkpoint: the shrink plan must map back to the zoo model
        prune_info = dict(prune_info)
        prune_info["channels"] = compose_plans(previous.get("channels") or {},
                                               prune_info.get("channels") or {})
        prune_info["previous"] = {k: v for k, v in previous.items() if k != "channels"}
    ckpt.update(
        state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
        optimizer=None,
        scheduler=None,
        prune_info=_plain(prune_info),
        metrics={**(base.get("metrics") or {}), "pruning": _plain(metrics or {})},
        onebit_version=onebit.__version__,
    )
    return save_checkpoint(path, ckpt)


def _plain(obj):
    """Plain Python (loads with ``weights_only=True``)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if torch.is_tensor(obj):
        return obj.tolist()
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    return str(obj)


def compose_plans(first: dict, second: dict) -> dict:
    """Shrink plan equal to applying ``first`` then ``second`` (whose indices refer to the
    channels ``first`` kept)."""
    out = {k: list(v) for k, v in first.items()}
    for name, keep in second.items():
        if name in out:
            out[name] = [out[name][i] for i in keep]
        else:
            out[name] = list(keep)
    return out
