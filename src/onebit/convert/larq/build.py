"""Keras 2 model config (Sequential or functional) + weights -> :class:`KerasGraph`.

The functional config lists layers with their ``inbound_nodes`` (``[[["name", node, tensor,
kwargs], ...]]``); the graph is executed in topological order. Every layer is applied once (a
shared layer, nested model or multi-output model is refused by name). Shapes are propagated by
running each built module on a zero tensor, which also gives Keras ``"same"`` padding its input
size.
"""
from __future__ import annotations

import fnmatch
import re

import torch

from onebit.convert.larq import lambdas as Z
from onebit.convert.larq import layers as L
from onebit.convert.larq.h5file import KerasFile, LarqImportError
from onebit.convert.larq.modules import KerasGraph

_PASS_THROUGH = {"Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"}
_DENSE = {"Dense", "QuantDense"}


def _key(name: str, used: set) -> str:
    k = re.sub(r"[^0-9A-Za-z_]", "_", name) or "layer"
    if k[0].isdigit():
        k = "l_" + k
    base, i = k, 1
    while k in used or k in ("input",):
        i += 1
        k = f"{base}_{i}"
    used.add(k)
    return k


def _input_shape(layer: dict, given, path) -> tuple:
    cfg = layer.get("config", {})
    shp = cfg.get("batch_input_shape") or cfg.get("batch_shape")
    if shp is None:
        raise LarqImportError(f"{path}: the model config has no input shape")
    shp = list(shp)[1:]
    if given is not None:
        shp = list(given)
    if any(v is None for v in shp):
        raise LarqImportError(f"{path}: input shape {shp} is not fully defined: pass input_shape=(H, W, C)")
    if len(shp) not in (1, 3):
        raise LarqImportError(f"{path}: input of shape {shp}: images (H, W, C) or vectors are supported")
    return tuple(int(v) for v in shp)


def _parse(kf: KerasFile, input_shape, identity_lambdas=()):
    """(input layer name, input shape HWC, [(name, class, config, [input names])], output name)."""
    top = kf.config
    cls, cfg = top.get("class_name"), top.get("config") or {}
    layers = cfg.get("layers") if isinstance(cfg, dict) else None
    if not isinstance(layers, list) or not layers:
        raise LarqImportError(f"{kf.path}: model_config {cls!r} has no layer list: not a Keras model")
    if cls == "Sequential":
        first = layers[0]
        if first.get("class_name") == "InputLayer":
            in_name, shape, rest = first["config"].get("name", "input"), _input_shape(first, input_shape, kf.path), layers[1:]
        else:
            in_name, shape, rest = "input", _input_shape(first, input_shape, kf.path) if (
                first.get("config", {}).get("batch_input_shape") or input_shape) else None, layers
            if shape is None:
                shp = cfg.get("build_input_shape")
                if not shp:
                    raise LarqImportError(f"{kf.path}: the Sequential model has no input shape")
                shape = _input_shape({"config": {"batch_input_shape": shp}}, input_shape, kf.path)
        seq, prev = [], in_name
        for ly in rest:
            name = ly.get("config", {}).get("name") or ly.get("name")
            seq.append((name, ly.get("class_name"), ly.get("config") or {}, [prev]))
            prev = name
        return in_name, shape, seq, prev
    if cls not in ("Functional", "Model"):
        raise LarqImportError(f"{kf.path}: model class {cls!r}: Sequential and functional models are supported")
    ins, outs = cfg.get("input_layers") or [], cfg.get("output_layers") or []
    if len(ins) != 1 or len(outs) != 1:
        raise LarqImportError(f"{kf.path}: {len(ins)} inputs and {len(outs)} outputs: one of each is supported")
    in_name, out_name = ins[0][0], outs[0][0]
    nodes, shape = [], None
    for ly in layers:
        name, lcls = ly.get("name") or ly.get("config", {}).get("name"), ly.get("class_name")
        if lcls == "InputLayer":
            if name != in_name:
                raise LarqImportError(f"{kf.path}: second input layer {name!r}: one input is supported")
            shape = _input_shape(ly, input_shape, kf.path)
            continue
        inbound = ly.get("inbound_nodes") or []
        if len(inbound) != 1:
            raise LarqImportError(f"layer {name!r} ({lcls}): applied {len(inbound)} times in the graph; "
                                  f"layers applied exactly once are supported")
        node = inbound[0]
        if isinstance(node, dict):
            raise LarqImportError(f"layer {name!r}: inbound nodes in the Keras 3 format; Keras 2 .h5 "
                                  f"files are supported")
        cfg_ = ly.get("config") or {}
        if lcls == "TFOpLambda":
            lcls, cfg_, node = _tf_op(name, cfg_, node)
        elif lcls == "Lambda" and (zoo := Z.decode(name, cfg_)) is not None:
            lcls, cfg_ = zoo
        elif lcls == "Lambda":
            if not any(fnmatch.fnmatchcase(name, p) for p in identity_lambdas):
                raise LarqImportError(f"layer {name!r} (Lambda): its computation is Python bytecode stored in "
                                      f"the file, which onebit does not execute or translate (a Lambda that "
                                      f"returns its input can be declared with identity_lambdas / "
                                      f"--identity-lambda NAME)")
            lcls = "Identity"
        srcs = []
        for t in node:
            if not isinstance(t, (list, tuple)) or len(t) < 3:
                raise LarqImportError(f"layer {name!r} ({lcls}): malformed inbound node {t!r}")
            if t[1] != 0 or not isinstance(t[2], int):
                raise LarqImportError(f"layer {name!r} ({lcls}): reads output {t[2]} of call {t[1]} of "
                                      f"{t[0]!r}: single-output layers applied once are supported")
            srcs.append(t[0] if t[2] == 0 else (t[0], t[2]))  # output k > 0: a split's (lambdas.rewrite)
        nodes.append((name, lcls, cfg_, srcs))
    if shape is None:
        raise LarqImportError(f"{kf.path}: the functional model has no InputLayer {in_name!r}")
    return in_name, shape, nodes, out_name


_TF_OPS = {"__operators__.add": "Add", "math.add": "Add", "math.add_n": "Add", "math.multiply": "Multiply",
           "math.subtract": "Subtract", "math.maximum": "Maximum", "math.minimum": "Minimum",
           "concat": "Concatenate", "nn.relu": "ReLU"}


def _is_ref(t) -> bool:
    return isinstance(t, (list, tuple)) and len(t) >= 3 and isinstance(t[0], str) and isinstance(t[1], int)


def _tf_op(name, cfg, node):
    """A TensorFlow op recorded by Keras' functional API (``TFOpLambda``) -> (Keras class, config,
    inbound tensor refs). Its node is ``[first arg ref..., kwargs]`` with tensor refs in kwargs."""
    fn = str(cfg.get("function"))
    cls = _TF_OPS.get(fn)
    if cls is None:
        raise LarqImportError(f"layer {name!r} (TFOpLambda tf.{fn}): this TensorFlow op is not supported "
                              f"(supported: {', '.join('tf.' + k for k in sorted(_TF_OPS))})")
    refs, kwargs = [], {}
    items = list(node)
    if items and isinstance(items[-1], dict):
        kwargs = items.pop()
    if _is_ref(items):  # flat form: [name, node, tensor, kwargs]
        refs.append(list(items[:3]))
    else:
        for t in items:
            if _is_ref(t):
                refs.append(list(t))
            elif isinstance(t, (list, tuple)) and all(_is_ref(u) for u in t):
                refs.extend(list(u) for u in t)
            else:
                raise LarqImportError(f"layer {name!r} (TFOpLambda tf.{fn}): malformed inbound node {node!r}")
    new_cfg = {"name": name}
    for k, v in kwargs.items():
        if _is_ref(v):
            refs.append(list(v[:3]))
        elif isinstance(v, (list, tuple)) and v and all(_is_ref(u) for u in v):
            refs.extend(list(u[:3]) for u in v)
        elif k == "axis":
            new_cfg["axis"] = v
        elif k == "name" or v is None:
            continue
        else:
            raise LarqImportError(f"layer {name!r} (TFOpLambda tf.{fn}): argument {k}={v!r} is not supported")
    if cls == "Concatenate" and "axis" not in new_cfg:
        raise LarqImportError(f"layer {name!r} (TFOpLambda tf.concat): no axis")
    return cls, new_cfg, refs


def _topological(in_name, nodes, path):
    by_name = {n[0]: n for n in nodes}
    if len(by_name) != len(nodes):
        raise LarqImportError(f"{path}: two layers share a name")
    done, order, visiting = {in_name}, [], set()

    def visit(name, user):
        if name in done:
            return
        if name not in by_name:
            raise LarqImportError(f"layer {user!r} reads {name!r}, which is not a layer of the model")
        if name in visiting:
            raise LarqImportError(f"layer {name!r}: the graph has a cycle")
        visiting.add(name)
        for s in by_name[name][3]:
            visit(s, name)
        visiting.discard(name)
        done.add(name)
        order.append(by_name[name])

    for n in nodes:
        visit(n[0], n[0])
    return order


def _flatten_feeds_dense(name, nodes):
    """The Dense layers a Flatten feeds (through dropouts only); None if it feeds anything else."""
    consumers = {}
    for n in nodes:
        for s in n[3]:
            consumers.setdefault(s, []).append(n)
    dense, todo = [], list(consumers.get(name, []))
    while todo:
        n = todo.pop()
        if n[1] in _DENSE and len(n[3]) == 1:
            dense.append(n[0])
        elif n[1] in _PASS_THROUGH:
            todo.extend(consumers.get(n[0], []))
        else:
            return None
    return dense or None


def build(kf: KerasFile, input_shape=None, identity_lambdas=()) -> KerasGraph:
    """The torch module of a parsed Keras file (eval mode). ``identity_lambdas``: names (or
    ``fnmatch`` patterns) of Lambda layers the caller declares to return their input unchanged."""
    if kf.config is None:
        raise LarqImportError(f"{kf.path}: a weights-only file (model.save_weights) has no architecture: "
                              f"name its Larq Zoo architecture (larq_zoo=NAME / --larq-zoo NAME) or import a model.save file")
    in_name, in_hwc, nodes, out_name = _parse(kf, input_shape, tuple(identity_lambdas))
    nodes, grouped = Z.rewrite(nodes)
    order = _topological(in_name, nodes, kf.path)
    if out_name != in_name and out_name not in {n[0] for n in order}:
        raise LarqImportError(f"{kf.path}: output layer {out_name!r} is not in the model")
    shape_of = {in_name: (in_hwc[2], in_hwc[0], in_hwc[1]) if len(in_hwc) == 3 else tuple(in_hwc)}
    used_keys: set = set()
    key_of = {in_name: _key(in_name, used_keys)}
    flatten_perm = {}  # dense layer name -> (C, H, W) of the map its Flatten read
    mods, graph_nodes = {}, []
    consumed_weights = set()
    for name, lcls, cfg, srcs in order:
        builder = L.BUILDERS.get(lcls) or Z.BUILDERS.get(lcls)
        if builder is None:
            raise LarqImportError(f"layer {name!r}: layer class {lcls!r} is not supported (supported: "
                                  f"{', '.join(sorted(L.BUILDERS))})")
        in_shapes = [shape_of[s] for s in srcs]
        weights = {p: kf.weights.get(p, {}) for p in grouped[name]} if name in grouped else kf.weights.get(name, {})
        flat_from = None
        if lcls == "Flatten" and len(in_shapes) == 1 and len(in_shapes[0]) == 3:
            feeds = _flatten_feeds_dense(name, order)
            if feeds is not None:
                flat_from = in_shapes[0]
                for d in feeds:
                    flatten_perm[d] = in_shapes[0]
        elif lcls in _DENSE:
            flat_from = flatten_perm.get(name)
        ctx = L.Ctx(name, lcls, cfg, weights, in_shapes, flat_from)
        mod = builder(ctx)
        extra = set(weights) - ctx.used - L.IGNORED_WEIGHTS
        if extra:
            raise ctx.err(f"weights {sorted(extra)} in the file are not used by this layer's config")
        consumed_weights.update([name] + grouped.get(name, []))
        mod.eval()
        try:
            with torch.no_grad():
                y = mod(*[torch.zeros((1,) + tuple(s)) for s in in_shapes])
        except (RuntimeError, ValueError) as e:
            raise ctx.err(f"cannot be applied to inputs of shape {[list(s) for s in in_shapes]}: {e}") from None
        shape_of[name] = tuple(y.shape[1:])
        key = _key(name, used_keys)
        key_of[name] = key
        mods[key] = mod
        graph_nodes.append((key, [key_of[s] for s in srcs]))
    unused = sorted(n for n, w in kf.weights.items() if w and n not in consumed_weights)
    if unused:
        raise LarqImportError(f"{kf.path}: weights for layers {unused} that the architecture does not have")
    model = KerasGraph(mods, graph_nodes, key_of[in_name], key_of[out_name], in_hwc,
                       {key_of[n]: n for n in key_of})
    return model.eval()
