"""Larq Zoo's ``Lambda`` layers whose computation is stored as data next to their bytecode.

A Keras ``Lambda`` saves its function as Python bytecode, which onebit never executes. Two kinds
of Larq Zoo lambdas are nevertheless read exactly from the data that the config holds besides
the bytecode (the module that defined the lambda, and its closure):

- ``larq_zoo.core.utils.TFOpLayer(tf_op, *args, **kwargs)``: ``config.function`` is ``[bytecode,
  null, [args, kwargs, op]]``, the op by name (or as Keras' ``{"class_name": "function", "config":
  name}``). Supported: ``split`` with ``args == [n]``, ``kwargs ==
  {"axis": -1}`` (the channels in ``n`` equal parts) and ``concat`` with no args and ``kwargs ==
  {"axis": -1}`` (a Keras ``Concatenate`` on the channels). A split is accepted only as the input
  of a grouped convolution, as MeliusNet's stem and transitions build it: its ``n`` outputs read by
  ``n`` ``Conv2D`` of one configuration (output ``i`` by the ``i``-th), joined in that order by
  one concat. The three become one ``Conv2D`` with ``groups=n`` (the kernels concatenated along
  the output channels, which is Keras' own grouped-kernel layout) named after the concat.
- ``larq_zoo.literature.meliusnet``'s improvement merge (a layer named ``*_improve_merge``, its
  closure ``[f_in]``): ``x[0] + tf.pad(x[1], [[0, 0], [0, 0], [0, 0], [f_in - 64, 0]])``, the
  64 channels of ``x[1]`` added to the last 64 of ``x[0]``. In MeliusNet ``x[0]`` is the
  channel concatenation ``concat(y, d)`` of the dense block, with ``d`` its 64-channel binary
  convolution, so the merge is ``concat(y, d + x[1])`` (:class:`~onebit.convert.larq.modules.ConcatAdd`),
  the same float additions on the same values; it reads the concat's inputs and ``x[1]``. It is
  recognized only when ``x[0]`` is such a concatenation, has ``f_in`` channels and its last input
  has the 64 channels of ``x[1]``.

- the identity Lambdas of a Larq Zoo architecture (:data:`onebit.convert.larq.zoo.IDENTITY_LAMBDAS`,
  known from larq_zoo's source: ``Lambda(lambda x: x, name=f"{name}_out")`` in
  ``real_to_bin_nets.py``): a layer of that module, with such a name and no closure, returns its
  input.

Any other op, argument, routing or shape is a :class:`LarqImportError` naming the layer.
"""
from __future__ import annotations

import fnmatch

import numpy as np

from onebit.convert.larq import layers as L
from onebit.convert.larq import modules as M
from onebit.convert.larq import zoo
from onebit.convert.larq.h5file import LarqImportError

TF_OP_MODULE = "larq_zoo.core.utils"
MELIUSNET_MODULE = "larq_zoo.literature.meliusnet"
# modules whose identity Lambdas zoo.IDENTITY_LAMBDAS declares, and their architecture
IDENTITY_MODULES = {"larq_zoo.literature.real_to_bin_nets": "RealToBinaryNet"}
# the node classes of these lambdas (a ":" no Keras class name has, so no file can name them)
SPLIT, GROUPED, MERGE = "Lambda:split", "Lambda:grouped_conv2d", "Lambda:improve_merge"
IMPROVE_CHANNELS = 64  # the width larq_zoo's improvement merge pads x[1] from (its code's constant)

# conv config entries that must agree across the parts of a grouped convolution
_CONV_KEYS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
              "activation", "use_bias")


def _err(name, what, msg) -> LarqImportError:
    return LarqImportError(f"layer {name!r} (Lambda {what}): {msg}")


def decode(name: str, cfg: dict):
    """``(class, config)`` of a Larq Zoo lambda read from its data, or ``None`` when it is not one
    of them (the caller's bytecode error then applies). Classes: ``Concatenate``, ``SPLIT`` (until
    :func:`rewrite` makes it a grouped convolution, ``GROUPED``) and ``MERGE`` (the improvement merge)."""
    module, fn = cfg.get("module"), cfg.get("function")
    if module == TF_OP_MODULE and isinstance(fn, list) and len(fn) == 3 and isinstance(fn[2], list) \
            and len(fn[2]) == 3:
        args, kwargs, op = fn[2]
        if isinstance(op, dict) and op.get("class_name") == "function" and isinstance(op.get("config"), str):
            op = op["config"]  # the function serialized by name (Keras' serialize_keras_object)
        what = f"TFOpLayer tf.{op}"
        if kwargs != {"axis": -1}:
            raise _err(name, what, f"keyword arguments {kwargs!r}: {{'axis': -1}} (the channels) is supported")
        if op == "split":
            if not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], int)
                    and not isinstance(args[0], bool) and args[0] >= 1):
                raise _err(name, what, f"arguments {args!r}: one positive number of equal parts is supported")
            return SPLIT, {"name": name, "count": args[0]}
        if op == "concat":
            if args != []:
                raise _err(name, what, f"arguments {args!r}: a concatenation takes none")
            return "Concatenate", {"name": name, "axis": -1}
        raise _err(name, what, f"op {op!r} with arguments {args!r}: the TFOpLayer ops supported are "
                               f"split and concat (of the channels)")
    if module == MELIUSNET_MODULE and name.endswith("_improve_merge") and isinstance(fn, list) and len(fn) == 3:
        closure = fn[2]
        if not (isinstance(closure, list) and len(closure) == 1 and isinstance(closure[0], int)
                and not isinstance(closure[0], bool)):
            raise _err(name, "MeliusNet improvement merge", f"closure {closure!r}: [f_in] is expected")
        return MERGE, {"name": name, "f_in": closure[0], "concat": None}
    arch = IDENTITY_MODULES.get(module)
    if arch and isinstance(fn, list) and len(fn) == 3 and fn[1] is None and fn[2] is None \
            and any(fnmatch.fnmatchcase(name, p) for p in zoo.identity_lambdas(arch)):
        return "Identity", cfg
    return None


def _ref_index(src, layer):
    """The output index of ``layer`` that ``src`` reads (0 for a plain name), or None."""
    if src == layer:
        return 0
    if isinstance(src, tuple) and src[0] == layer:
        return src[1]
    return None


def rewrite(nodes: list):
    """Grouped convolutions and improvement merges in ``nodes`` (``[(name, class, config,
    inputs)]``, an input being a name or ``(name, output index)``) rewritten onto supported
    classes. Returns ``(nodes, {grouped conv node: the Conv2D layers whose weights it reads})``."""
    by_name = {n[0]: n for n in nodes}
    consumers: dict = {}
    for n in nodes:
        for s in n[3]:
            consumers.setdefault(s[0] if isinstance(s, tuple) else s, []).append(n)
    replace, drop, parts = {}, set(), {}
    for split in (n for n in nodes if n[1] == SPLIT):
        node = _grouped_conv(split, consumers)
        replace[node[0]] = node
        parts[node[0]] = node[2]["parts"]
        drop.update(node[2]["parts"] + [split[0]])
    by_name.update(replace)
    for merge in (n for n in nodes if n[1] == MERGE):
        replace[merge[0]] = _improve_merge(merge, by_name)
    out = [replace.get(n[0], n) for n in nodes if n[0] not in drop]
    for n in out:
        for s in n[3]:
            if isinstance(s, tuple):
                raise LarqImportError(f"layer {n[0]!r} ({n[1]}): reads output {s[1]} of call 0 of {s[0]!r}: "
                                      f"single-output layers applied once are supported")
    return out, parts


def _grouped_conv(split, consumers):
    name, _, cfg, srcs = split
    g = cfg["count"]
    what = "TFOpLayer tf.split"
    use = ("a split is supported as the input of a grouped convolution: its outputs 0..n-1 read each "
           "by one Conv2D of one configuration, joined in that order by one concat")
    parts = consumers.get(name, [])
    idx = [next(_ref_index(s, name) for s in c[3] if _ref_index(s, name) is not None) for c in parts]
    if sorted(idx) != list(range(g)) or any(c[1] != "Conv2D" or len(c[3]) != 1 for c in parts):
        read = ", ".join(f"{c[0]!r} ({c[1]}) output {i}" for c, i in zip(parts, idx)) or "nothing"
        raise _err(name, what, f"into {g} parts read by {read}: {use}")
    parts = [c for _, c in sorted(zip(idx, parts), key=lambda t: t[0])]
    base = {k: parts[0][2].get(k) for k in _CONV_KEYS}
    for c in parts[1:]:
        diff = [k for k in _CONV_KEYS if c[2].get(k) != base[k]]
        if diff:
            raise _err(name, what, f"its parts {parts[0][0]!r} and {c[0]!r} differ in {diff}: {use}")
    if int(base["groups"] or 1) != 1:
        raise _err(name, what, f"its parts are grouped convolutions themselves: {use}")
    joins = {id(j): j for c in parts for j in consumers.get(c[0], [])}
    join = next(iter(joins.values())) if len(joins) == 1 else None
    if join is None or any(len(consumers.get(c[0], [])) != 1 for c in parts) or join[1] != "Concatenate" \
            or join[2].get("axis", -1) not in (-1, 3) or list(join[3]) != [c[0] for c in parts]:
        raise _err(name, what, f"its convolutions {[c[0] for c in parts]} are not joined, in order and by "
                               f"nothing else, by one channel concat: {use}")
    conv_cfg = dict(parts[0][2], name=join[0], filters=g * int(base["filters"]), groups=g, split=name,
                    parts=[c[0] for c in parts])
    return (join[0], GROUPED, conv_cfg, list(srcs))


def _improve_merge(merge, by_name):
    name, _, cfg, srcs = merge
    if len(srcs) != 2:
        raise _err(name, "MeliusNet improvement merge", f"{len(srcs)} inputs: x[0] and x[1] are expected")
    cat = by_name.get(srcs[0]) if isinstance(srcs[0], str) else None
    if cat is None or cat[1] != "Concatenate" or cat[2].get("axis", -1) not in (-1, 3):
        raise _err(name, "MeliusNet improvement merge",
                   f"x[0] = {srcs[0]!r} is not a channel concatenation: the merge adds x[1] to the last "
                   f"{IMPROVE_CHANNELS} channels of x[0] and is supported where those are the last input of "
                   f"a concatenation (MeliusNet's dense block)")
    return name, MERGE, dict(cfg, concat=cat[0]), list(cat[3]) + [srcs[1]]


def grouped_conv2d(ctx):
    """The grouped ``Conv2D`` of a split -> convs -> concat, built as Keras' ``Conv2D`` with
    ``groups`` from its parts' kernels (and biases) concatenated along the output channels.
    ``ctx.weights`` maps each part's name to its weights."""
    shape = ctx.shape()
    if len(shape) != 3:
        raise ctx.err(f"input of shape {list(shape)} is not a feature map")
    cin, h, w = shape
    g, cfg = int(ctx.cfg["groups"]), ctx.cfg
    if cin % g:
        raise _err(cfg["split"], "TFOpLayer tf.split", f"splits {cin} channels into {g} parts: "
                                                       f"equal parts are supported")
    k, f = L._pair(cfg.get("kernel_size"), "kernel_size", ctx), int(cfg["filters"]) // g
    use_bias = bool(cfg.get("use_bias", True))
    whole = {"kernel": [], "bias": []}
    for part in cfg["parts"]:
        pc = L.Ctx(part, "Conv2D", cfg, ctx.weights.get(part, {}), [(cin // g, h, w)])
        whole["kernel"].append(pc.w("kernel", (k[0], k[1], cin // g, f)))
        if use_bias:
            whole["bias"].append(pc.w("bias", (f,)))
        extra = set(pc.weights) - pc.used
        if extra:
            raise pc.err(f"weights {sorted(extra)} in the file are not used by this layer's config")
    ctx.used.update(ctx.weights)
    kernel = np.concatenate(whole["kernel"], axis=3)
    bias = {"bias": np.concatenate(whole["bias"])} if use_bias else {}
    return L.conv2d(L.Ctx(ctx.name, "Conv2D", cfg, {"kernel": kernel, **bias}, ctx.in_shapes))


def improve_merge(ctx):
    """MeliusNet's improvement merge as ``concat(parts[:-1], parts[-1] + x1)`` (module docstring)."""
    shapes = [tuple(s) for s in ctx.in_shapes]
    *parts, x1 = shapes
    f_in = int(ctx.cfg["f_in"])
    x0 = (sum(s[0] for s in parts),) + parts[0][1:] if all(len(s) == 3 for s in parts) else None
    ok = (x0 is not None and len(x1) == 3 and x0[0] == f_in and x1[0] == IMPROVE_CHANNELS < f_in
          and all(s[1:] == x1[1:] for s in parts) and parts[-1][0] == IMPROVE_CHANNELS)
    if not ok:
        raise _err(ctx.name, "MeliusNet improvement merge",
                   f"x[0] = {ctx.cfg['concat']!r} concatenates inputs of shapes {[list(s) for s in parts]} "
                   f"(NCHW) and x[1] has shape {list(x1)}; the merge (closure f_in={f_in}) is supported "
                   f"where x[0] has f_in channels, its last input and x[1] have {IMPROVE_CHANNELS} (fewer) "
                   f"and all have one height and width")
    return M.ConcatAdd()


BUILDERS = {GROUPED: grouped_conv2d, MERGE: improve_merge}
