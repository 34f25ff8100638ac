"""Dataflow between binary layers, found with ``torch.fx``: which layer consumes a layer's
output channels (needed to shrink a layer's filters together with the next layer's inputs, and
to map a dense layer's inputs back to the NHWC order the engine packs them in).

A *chain* runs from a producer layer through per-channel / element-wise modules only
(BatchNorm, pooling, Hardtanh/ReLU, ClipBlock, Dropout, flatten) to exactly one consumer
(``Conv2d``/``Linear``, binary or float). Anything else (a residual add, a concat, a second
user of the tensor) ends the chain with an error: such a layer cannot be channel-pruned here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from onebit.prune.bops import example_input
from onebit.prune.layers import PruneError, is_binary_layer

# Modules that act on each channel independently (removing a channel never changes the others).
_CHANNELWISE = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.Hardtanh, nn.ReLU, nn.ReLU6,
    nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Dropout2d, nn.Identity, nn.PReLU, nn.Flatten,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
)
_CHANNELWISE_FUNCS = {
    F.relu, F.relu6, F.hardtanh, F.leaky_relu, torch.tanh, torch.sigmoid, F.max_pool2d,
    F.avg_pool2d, F.dropout, torch.flatten, torch.relu, torch.clamp, F.adaptive_avg_pool2d,
    F.adaptive_max_pool2d,
}
_CHANNELWISE_METHODS = {"flatten", "view", "reshape", "contiguous", "relu", "clamp", "tanh"}
_IGNORED_METHODS = {"size", "dim"}


def _is_clip_block(module: nn.Module) -> bool:
    try:
        from onebit.nn import ClipBlock
    except ImportError:
        return type(module).__name__ == "ClipBlock"
    return isinstance(module, ClipBlock)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return is_binary_layer(m) or _is_clip_block(m) or super().is_leaf_module(m, qualname)


@dataclass
class Chain:
    """Path from ``producer`` to ``consumer``; ``modules`` are the channel-wise modules in
    between (name, layout) where layout is ``("chan",)`` or ``("flat", C, HW)``;
    ``flatten = (C, HW)`` when the consumer sees the channels flattened (NCHW order)."""

    producer: str
    consumer: str | None = None
    modules: list[tuple[str, tuple]] = field(default_factory=list)
    flatten: tuple[int, int] | None = None
    error: str | None = None


@dataclass
class Dataflow:
    chains: dict[str, Chain]
    linear_input_chw: dict[str, tuple[int, int, int]]  # dense layer -> (C, H, W) it flattens


def _trace(model: nn.Module, input_size) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # data-dependent control flow etc.
        raise PruneError(f"cannot trace {type(model).__name__} with torch.fx: {exc}") from exc
    gm = fx.GraphModule(model, graph)
    was_training = model.training
    model.eval()  # ShapeProp runs the model; keep BN running statistics untouched
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input(model, input_size))
    finally:
        model.train(was_training)
    return gm


def _shape(node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _users(node) -> list:
    out = []
    for u in node.users:
        if u.op == "call_method" and u.target in _IGNORED_METHODS:
            continue
        if u.op == "call_function" and u.target is getattr and len(u.args) > 1 and u.args[1] == "shape":
            continue
        out.append(u)
    return out


def _is_flatten(src, dst) -> bool:
    a, b = _shape(src), _shape(dst)
    return a is not None and b is not None and len(a) == 4 and len(b) == 2 and b[1] == math.prod(a[1:])


def _step_kind(node, modules) -> str:
    """'consumer', 'channelwise' or 'other' for a node that uses the chain's tensor."""
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            return "consumer"
        if isinstance(mod, _CHANNELWISE) or _is_clip_block(mod):
            return "channelwise"
        return "other"
    if node.op == "call_function" and node.target in _CHANNELWISE_FUNCS:
        return "channelwise"
    if node.op == "call_method" and node.target in _CHANNELWISE_METHODS:
        return "channelwise"
    return "other"


def dataflow(model: nn.Module, input_size=None) -> Dataflow:
    """Trace ``model`` and describe the chain after every binary layer."""
    gm = _trace(model, input_size)
    modules = dict(gm.named_modules())
    chains: dict[str, Chain] = {}
    linear_chw: dict[str, tuple[int, int, int]] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        mod = modules[node.target]
        if isinstance(mod, nn.Linear) and is_binary_layer(mod):
            chw = _flattened_input(node, modules)
            if chw is not None:
                linear_chw[node.target] = chw
        if not is_binary_layer(mod):
            continue
        chains[node.target] = _follow(node, modules)
    return Dataflow(chains=chains, linear_input_chw=linear_chw)


def _flattened_input(node, modules) -> tuple[int, int, int] | None:
    cur = node.args[0] if node.args else None
    while isinstance(cur, fx.Node) and _step_kind(cur, modules) == "channelwise":
        src = cur.args[0] if cur.args else None
        if not isinstance(src, fx.Node):
            return None
        if _is_flatten(src, cur):
            c, h, w = _shape(src)[1:]
            return (c, h, w)
        cur = src
    return None


def _follow(node, modules) -> Chain:
    chain = Chain(producer=node.target)
    layout: tuple = ("chan",)
    cur = node
    while True:
        users = _users(cur)
        if len(users) != 1:
            chain.error = f"output of {node.target!r} reaches {len(users)} users (residual or branch)"
            return chain
        u = users[0]
        if u.op == "output":
            chain.error = f"{node.target!r} produces the model output"
            return chain
        if not u.args or u.args[0] is not cur:
            chain.error = f"output of {node.target!r} enters {u.name!r} not as its first input"
            return chain
        kind = _step_kind(u, modules)
        if kind == "consumer":
            mod = modules[u.target]
            if isinstance(mod, nn.Conv2d):
                if layout[0] != "chan":
                    chain.error = f"{u.target!r} convolves a flattened tensor"
                    return chain
                if mod.groups != 1:
                    chain.error = f"consumer {u.target!r} is a grouped convolution"
                    return chain
            chain.consumer = u.target
            if layout[0] == "flat":
                chain.flatten = (layout[1], layout[2])
            return chain
        if kind != "channelwise":
            what = u.target if u.op == "call_module" else getattr(u.target, "__name__", str(u.target))
            chain.error = f"output of {node.target!r} enters {u.op} {what!r} (not channel-wise)"
            return chain
        if _is_flatten(cur, u):
            if layout[0] == "flat":
                chain.error = "flattened twice"
                return chain
            c, h, w = _shape(cur)[1:]
            layout = ("flat", c, h * w)
        else:
            a, b = _shape(cur), _shape(u)
            if a is not None and b is not None and (len(a) != len(b) or a[:2] != b[:2]):
                chain.error = f"{u.name!r} reshapes the channels of {node.target!r}"
                return chain
        if u.op == "call_module":
            chain.modules.append((u.target, layout))
        cur = u
