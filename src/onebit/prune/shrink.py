"""Structured shrink: physically remove pruned filters (output channels whose mask is all 0)
together with everything that only carries those channels: the per-channel parameters in
between (BatchNorm weight/bias/running statistics, PReLU slopes) and the next layer's matching
input channels (for a dense layer after a flatten, the ``H*W`` features of each channel).

Why the function is preserved. A pruned filter outputs a constant (its bias, or 0), so after the
channel-wise chain the next layer sees a constant ``v_c`` on that channel. If the next layer is
binary, its weights on the channel must already be pruned ("dead" inputs, as channel pruning
with :class:`onebit.prune.Pruner` makes them): they contribute exactly 0 and removing them
changes nothing. If the next layer is float (the classifier), the constant folds into its bias,
``b'_o = b_o + sum_{c dead} v_c * sum_k W[o, c, k]`` (exact for a dense layer or an unpadded
conv; a padded float conv would see the constant only at in-bounds taps and is refused unless
``v_c = 0``). Constants are read in eval mode, so the equality holds for inference (BN running
statistics).
"""
from __future__ import annotations

import torch
from torch import nn

from onebit.nn.hooks import eval_forward
from onebit.prune.bops import example_input
from onebit.prune.graph import dataflow
from onebit.prune.layers import PruneError, binary_layers, is_binary_layer, set_mask


def _dead_filters(layer: nn.Module) -> torch.Tensor | None:
    mask = getattr(layer, "weight_mask", None)
    if mask is None:
        return None
    alive = mask.flatten(1).any(dim=1)
    return None if bool(alive.all()) else alive


def _slice_module(module: nn.Module, keep: torch.Tensor, n_old: int) -> None:
    """Keep entries ``keep`` of every 1-D+ parameter/buffer whose first dim is ``n_old``."""
    for name, p in list(module.named_parameters(recurse=False)):
        if p is not None and p.dim() >= 1 and p.shape[0] == n_old:
            setattr(module, name, nn.Parameter(p.detach()[keep].clone(), requires_grad=p.requires_grad))
    for name, b in list(module.named_buffers(recurse=False)):
        if b is not None and b.dim() >= 1 and b.shape[0] == n_old:
            module._buffers[name] = b[keep].clone()
    for attr in ("num_features", "num_parameters"):
        if getattr(module, attr, None) == n_old:
            setattr(module, attr, int(keep.numel()))


@torch.no_grad()
def shrink(model: nn.Module, input_size=None) -> dict[str, list[int]]:
    """Shrink ``model`` in place; returns ``{layer: kept output channel indices}`` for every
    layer that lost filters (the plan :func:`apply_plan` replays on a fresh model)."""
    flow = dataflow(model, input_size)
    modules = dict(model.named_modules())
    todo = []
    for name, chain in flow.chains.items():
        alive = _dead_filters(modules[name])
        if alive is None:
            continue
        if chain.error is not None:
            continue  # not a chain: the dead filters stay as masks (still exact zeros)
        todo.append((name, chain, alive))
    if not todo:
        return {}
    # Read the constants the consumers see on dead channels (one eval forward, before editing).
    seen: dict[str, torch.Tensor] = {}
    hooks = [modules[c.consumer].register_forward_pre_hook(
        lambda mod, args, key=c.consumer: seen.__setitem__(key, args[0].detach().clone()))
        for _, c, _ in todo]
    eval_forward(model, example_input(model, input_size), hooks)
    plan = {}
    for name, chain, alive in todo:
        producer = modules[name]
        consumer = modules[chain.consumer]
        keep = alive.nonzero().flatten().cpu()
        dead = (~alive).nonzero().flatten().cpu()
        n_out = producer.weight.shape[0]
        if chain.flatten is not None:
            _, hw = chain.flatten
            feats = lambda ch: (ch.view(-1, 1) * hw + torch.arange(hw).view(1, -1)).flatten()  # noqa: E731
            keep_in, dead_in = feats(keep), feats(dead)
        else:
            hw = 1
            keep_in, dead_in = keep, dead
        x_in = seen[chain.consumer][0]
        if is_binary_layer(consumer):
            cmask = getattr(consumer, "weight_mask", None)
            if cmask is None or bool(cmask[:, dead_in].any()):
                raise PruneError(
                    f"cannot shrink {name!r}: inputs {dead.tolist()} of {chain.consumer!r} are not "
                    "pruned (mask them, e.g. with Pruner(granularity='channel'))")
        else:
            _fold_constants(consumer, chain.consumer, x_in, dead, dead_in)
        # producer: drop the dead filters (and any per-channel scale / bias / mask rows)
        _slice_module(producer, keep, n_out)
        for attr in ("out_channels", "out_features"):
            if hasattr(producer, attr):
                setattr(producer, attr, int(keep.numel()))
        # channel-wise modules in between
        for mod_name, layout in chain.modules:
            mod = modules[mod_name]
            if layout[0] == "flat":
                _slice_module(mod, keep_in, n_out * layout[2])
            else:
                _slice_module(mod, keep, n_out)
        # consumer: drop the matching input channels / features
        cw = consumer.weight.detach()
        consumer.weight = nn.Parameter(cw[:, keep_in].clone(), requires_grad=consumer.weight.requires_grad)
        if getattr(consumer, "weight_mask", None) is not None:
            consumer._buffers["weight_mask"] = consumer.weight_mask[:, keep_in].clone()
        if isinstance(consumer, nn.Conv2d):
            consumer.in_channels = int(keep.numel())
        else:
            consumer.in_features = int(keep_in.numel())
        plan[name] = keep.tolist()
    return plan


def _fold_constants(consumer, cname, x_in, dead, dead_in) -> None:
    """Fold the constant inputs on dead channels of a float layer into its bias."""
    w = consumer.weight.detach()
    if consumer.bias is None:  # always materialize: the shrunk structure must not depend on values
        consumer.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
    if isinstance(consumer, nn.Conv2d):
        maps = x_in[dead]  # (n_dead, H, W)
        v = maps.flatten(1)[:, 0] if maps.numel() else maps.new_zeros(0)
        if maps.numel() and not torch.allclose(maps, v.view(-1, 1, 1).expand_as(maps)):
            raise PruneError(f"dead channels reaching {cname!r} are not constant; cannot fold them")
        if bool((v != 0).any()):
            pad = consumer.padding
            if isinstance(pad, str) or any(p != 0 for p in pad):
                raise PruneError(f"{cname!r} is a padded float conv: dead non-zero channels cannot fold into its bias")
            consumer.bias.data += (w[:, dead].sum(dim=(2, 3)) * v.view(1, -1)).sum(dim=1)
    else:
        v = x_in[dead_in]
        consumer.bias.data += w[:, dead_in] @ v


def apply_plan(model: nn.Module, plan: dict[str, list[int]], input_size=None) -> nn.Module:
    """Replay a shrink plan (``{layer: kept channels}``) on a freshly built model so that a
    pruned checkpoint's ``state_dict`` loads into it."""
    modules = dict(model.named_modules())
    layers = dict(binary_layers(model))
    flow = dataflow(model, input_size)
    masks = {}

    def mask_of(name):
        if name not in masks:
            masks[name] = torch.ones_like(layers[name].weight)
        return masks[name]

    for name, keep in plan.items():
        if name not in layers:
            raise PruneError(f"shrink plan names {name!r}, not a binary layer of this model")
        chain = flow.chains[name]
        if chain.error is not None:
            raise PruneError(f"shrink plan for {name!r}: {chain.error}")
        alive = torch.zeros(layers[name].weight.shape[0], dtype=torch.bool)
        alive[torch.as_tensor(keep, dtype=torch.long)] = True
        mask_of(name)[~alive] = 0.0
        if chain.consumer in layers:
            dead = (~alive).nonzero().flatten()
            if chain.flatten is not None:
                hw = chain.flatten[1]
                dead = (dead.view(-1, 1) * hw + torch.arange(hw).view(1, -1)).flatten()
            mask_of(chain.consumer)[:, dead] = 0.0
    for name, m in masks.items():
        set_mask(layers[name], m)
    shrink(model, input_size)
    for layer in dict(binary_layers(model)).values():
        if getattr(layer, "weight_mask", None) is not None and bool(layer.weight_mask.all()):
            set_mask(layer, None)
    return model
