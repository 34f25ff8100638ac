"""Torch model with branches (values that split and join) -> engine graph.

:mod:`onebit.convert.graph` converts chains: each layer consumes what the previous one produced.
This module converts general graphs of the same layers, such as the residual connections of an
imported Keras model (:class:`onebit.convert.larq.KerasGraph`) or a PyTorch model whose forward
adds two branches (``y = f(x) + x``). A model that turns out to be a chain goes to
:func:`onebit.convert.graph.build` unchanged.

Tracing. One eval forward on a zero input, with forward hooks on the leaf modules (as the chain
converter) and a ``TorchFunctionMode`` that records the torch functions called *between* leaf
modules (``a + b``, ``torch.add``, ``torch.cat``, ``flatten``). Tensors are matched by identity,
so each node knows which nodes produced its inputs: the graph is known exactly, whatever Python
code routes the tensors. A Keras ``Add`` is a leaf module with two inputs (``Merge("add")``).

Stages. Each producer (first conv, binary conv / dense, float conv) is followed by the layers
that fold into its output stage (BatchNorm, activation, max pool, clip block) as long as its
value has one consumer; the chain converter's builder does that part. Where a value has several
consumers (the shortcut of a residual connection) or feeds a join, its stage is chosen for all
of them at once:

- every consumer is a binary layer: bits (threshold stage, :func:`onebit.convert.fold.threshold_stage`);
- otherwise the value is kept real: float32 (float stage), or int8 when a clip block already
  quantized it. A binary consumer then reads its sign through one ``bitpack`` op (``bit = x < 0``,
  the sign of the real value, shared by all binary consumers of the value).

Joins. ``add`` of two int8 values followed by a clip block is the int8 add (both operands
requantized onto the clip's grid in fixed point, as in onebit's residual blocks); otherwise the
operands are float32 (an int8 operand is dequantized) and the add is the float add. The graph
uses the ops of docs/format.md §7.3. A multiplication (Keras ``Multiply``) of a value by a
per-channel vector (Real-to-Binary Net's gate: global average pool -> dense ReLU -> dense sigmoid ->
reshape to [1, 1, C]) is ``mul_channels_f32`` on float32 operands; a sigmoid is ``sigmoid_f32``, a
PReLU ``prelu_f32``. Layers on a joined or shared value:
``bitpack`` for binary layers, ``clamp_f32`` for ReLU / hardtanh, ``maxpool2d`` / ``avgpool2d``,
``conv1x1_f32`` or ``conv2d_i8`` for float convolutions, ``dense_f32``, ``global_avgpool``.
A channel concatenation (Keras ``Concatenate``, ``torch.cat`` along the channels) is the
``concat`` op: two int8 values on one grid stay int8, two bits values stay bits, otherwise the
operands are float32 (int8 ones dequantized). A BatchNorm on a shared or joined value (Keras
DenseNets normalize each concatenation before its binary convolution) is its own op, the
per-channel affine map ``affine_f32`` on the float32 value (int8 dequantized); its binary readers
then read its sign through a ``bitpack``. What cannot be represented (a clip block on a shared or
joined value, another torch function between layers) is a :class:`ConversionError` naming the
layer and why.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from onebit.convert import graph as chain
from onebit.convert.fold import ConversionError, bn_affine
from onebit.runtime.graph import Value

INPUT = -1  # node index of the model input
OUTPUT = -2  # consumer index of the model output

_ADD = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.__iadd__,
        torch.Tensor.add_}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_FLATTEN = {torch.flatten, torch.Tensor.flatten, torch.Tensor.view, torch.Tensor.reshape, torch.reshape}
_PASS = chain.SKIP + (nn.Flatten,)
_ACTS = (nn.ReLU, nn.Hardtanh)


@dataclass
class Node:
    """One operation of the traced graph: a leaf module, or a torch function between modules."""

    name: str
    kind: str  # layer | add | concat | pass | function
    module: nn.Module | None
    inputs: list = field(default_factory=list)  # node indices (INPUT for the model input)
    detail: str = ""  # the torch function of a ``function`` node


class _Trace:
    """Hooks + function mode recording the dataflow of one forward."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.producer: dict[int, int] = {}  # id(tensor) -> node index
        self.keep: list = []  # every recorded tensor stays alive, so that ids stay unique
        self.depth = 0

    def source(self, t) -> int | None:
        return self.producer.get(id(t))

    def add(self, node: Node, out) -> None:
        self.nodes.append(node)
        self.keep.append(out)
        if torch.is_tensor(out):
            self.producer[id(out)] = len(self.nodes) - 1

    def layer(self, name, m, inputs, out):
        srcs = [self.source(t) for t in inputs if torch.is_tensor(t)]
        if len(srcs) != len(inputs) or any(s is None for s in srcs):
            raise ConversionError(f"layer {name!r} ({type(m).__name__}) reads a tensor that is not the "
                                  f"output of a layer or of the model input (a constant or a non-tensor "
                                  f"argument): not supported")
        kind = "pass" if isinstance(m, _PASS) and len(srcs) == 1 else "layer"
        self.add(Node(name, kind, m, srcs), out)

    def function(self, func, args, kwargs, out):
        tensors = [a for a in args if torch.is_tensor(a)]
        if func in _CAT and args and isinstance(args[0], (list, tuple)):
            tensors = [a for a in args[0] if torch.is_tensor(a)]
        srcs = [self.source(t) for t in tensors]
        fname = getattr(func, "__name__", str(func))
        if any(s is None for s in srcs) or not srcs:
            return  # reads no layer output (shapes, constants): not part of the dataflow
        name = f"{fname.strip('_')}#{len(self.nodes)}"
        kind, detail = "function", f"torch function {fname}"
        if func in _ADD and len(srcs) == 2 and kwargs.get("alpha", 1) == 1 and len(args) == 2:
            kind = "add"
        elif func in _CAT:
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            if out.dim() == 4 and dim in (1, -3):
                kind = "concat"
            else:
                detail = f"concatenation along dimension {dim} (the channel dimension 1 is the one of a feature map)"
        elif func in _FLATTEN and len(srcs) == 1 and out.dim() == 2 and out.shape[1] == tensors[0][0].numel():
            kind = "pass"  # a dense layer reading a map flattens it
        self.add(Node(name, kind, None, srcs, detail), out)


class _Mode(TorchFunctionMode):
    def __init__(self, tr: _Trace):
        super().__init__()
        self.tr = tr

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.tr.depth == 0 and torch.is_tensor(out):
            self.tr.function(func, args, kwargs, out)
        return out


def _display_names(model: nn.Module) -> dict:
    """Module name -> the name errors and ops use (a Keras layer's own name for imported models)."""
    keras = getattr(model, "keras_names", None) or {}
    out = {}
    for name, _ in model.named_modules():
        parts = name.split(".")
        if keras and len(parts) >= 2 and parts[0] == "layers" and parts[1] in keras:
            out[name] = ".".join([keras[parts[1]]] + parts[2:])
        else:
            out[name] = name
    return out


def trace_graph(model: nn.Module, input_shape_nchw) -> tuple[list[Node], int]:
    """The dataflow of one eval forward: nodes in execution order and the output's node index."""
    from onebit.nn.clip import ClipBlock
    from onebit.nn.layers import is_binary_layer

    names = _display_names(model)
    tr = _Trace()
    hooks, atomic = [], []
    for name, mod in model.named_modules():
        if any(name.startswith(p + ".") for p in atomic):
            continue
        if is_binary_layer(mod) or isinstance(mod, (ClipBlock,) + chain._blocks()) or len(list(mod.children())) == 0:
            if name:
                atomic.append(name)

            def pre(m, i):
                tr.depth += 1

            def post(m, i, o, name=names.get(name, name)):
                tr.depth -= 1
                if tr.depth == 0:
                    tr.layer(name, m, i, o)
            hooks.append(mod.register_forward_pre_hook(pre))
            hooks.append(mod.register_forward_hook(post))
    x = torch.zeros(input_shape_nchw)
    tr.producer[id(x)] = INPUT
    try:
        with torch.no_grad(), _Mode(tr):
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    out = tr.source(y)
    if out is None or out == INPUT:
        raise ConversionError("the model output is not the output of one of its layers: not supported")
    return tr.nodes, out


def is_chain(nodes: list[Node], out: int) -> bool:
    """No value is read twice and no node reads two: the chain converter's case (which also
    reports what lies between two layers of a chain)."""
    uses = defaultdict(int, {out: 1})
    for n in nodes:
        if len(n.inputs) != 1 or n.kind in ("add", "concat"):
            return False
        uses[n.inputs[0]] += 1
    return all(v == 1 for v in uses.values())


class _GraphBuilder:
    """Drives the chain converter's builder through the nodes of a general graph."""

    def __init__(self, nodes, out, input_shape, mean, std, float_boundary=False):
        self.nodes, self.out = nodes, out
        self.input_shape, self.mean, self.std = input_shape, mean, std
        self.bld = chain._Builder(input_shape, float_boundary)
        self.state: dict[int, object] = {INPUT: "input"}  # engine value name, or a chain._Pending
        self.alias: dict[int, int] = {}
        for i, n in enumerate(nodes):  # pass-through nodes (dropout, flatten) read their input's value
            if n.kind == "pass":
                self.alias[i] = self.resolve(n.inputs[0])
        self.consumers = defaultdict(list)
        for i, n in enumerate(nodes):
            if i not in self.alias:
                for s in n.inputs:
                    self.consumers[self.resolve(s)].append(i)
        self.consumers[self.resolve(out)].append(OUTPUT)
        self.signs: dict[str, str] = {}  # real value -> its bitpack (one per value)
        self.absorbed: dict[int, int] = {}  # clip node -> the int8 add it became part of

    def resolve(self, i: int) -> int:
        return self.alias.get(i, i)

    # -- values -------------------------------------------------------------------------------
    def _need(self, consumer: int) -> str:
        from onebit.nn.layers import is_binary_layer

        if consumer != OUTPUT and self.nodes[consumer].kind == "layer" and is_binary_layer(self.nodes[consumer].module):
            return "bits"
        return "f32"

    def value(self, i: int) -> str:
        """The engine value of node ``i``, deciding its output stage for all its consumers."""
        i = self.resolve(i)
        st = self.state[i]
        if isinstance(st, str):
            return st
        users = self.consumers[i]
        float_layer = st.type in ("dense_f32", "conv1x1_f32")  # a float layer has a float stage only
        need = "bits" if not float_layer and all(self._need(c) == "bits" for c in users) else "f32"
        where = ", ".join(repr(self.nodes[c].name) if c != OUTPUT else "the model output" for c in users)
        self.bld.pending, self.bld.cur = st, st.in_value
        self.bld.finalize(need, where)
        self.state[i] = self.bld.cur
        return self.bld.cur

    def _sole_pending(self, i: int, node_index: int):
        """The pending producer of node ``i`` when ``node_index`` is its only consumer, else None."""
        i = self.resolve(i)
        st = self.state[i]
        if not isinstance(st, str) and self.consumers[i] == [node_index]:
            return st
        return None

    def _sign_of(self, v: str, name: str) -> str:
        """The bits of a real value (one shared ``bitpack`` per value)."""
        if v not in self.signs:
            x = self.bld.values[v]
            self.bld.cur = v
            self.signs[v] = self.bld.emit(f"{name}.bitpack", "bitpack", {}, {}, Value("bits", x.shape))
        return self.signs[v]

    # -- nodes --------------------------------------------------------------------------------
    def run(self):
        for i, n in enumerate(self.nodes):
            if i in self.alias:
                continue
            if i in self.absorbed:
                self.state[i] = self.state[self.absorbed[i]]
            elif n.kind == "layer" and len(n.inputs) == 1:
                self.layer(i, n)
            elif n.kind == "add" or (n.kind == "layer" and _is_add_module(n.module)):
                self.join_add(i, n)
            elif n.kind == "concat" or (n.kind == "layer" and _is_concat_module(n.module)):
                self.join_concat(i, n)
            elif n.kind == "layer" and _is_mul_module(n.module):
                self.join_mul(i, n)
            elif n.kind == "layer":
                raise ConversionError(f"layer {n.name!r} ({type(n.module).__name__}) takes {len(n.inputs)} "
                                      f"inputs: not supported")
            else:
                raise ConversionError(f"{n.detail} between layers (node {n.name!r}, reading "
                                      f"{', '.join(self._name(s) for s in n.inputs)}): the converter represents "
                                      f"layers, additions of two branches and flattening")
        out = self.resolve(self.out)
        st = self.state[out]
        self.bld.pending, self.bld.cur = (None, st) if isinstance(st, str) else (st, st.in_value)
        return chain.logits(self.bld)

    def _name(self, i):
        return "the model input" if i == INPUT else repr(self.nodes[i].name)

    def _dispatch(self, name, m):
        chain.build(None, self.input_shape, self.mean, self.std, builder=self.bld, layers=[(name, m, None, None)])

    def layer(self, i: int, n: Node):
        from onebit.nn.clip import ClipBlock
        from onebit.nn.layers import is_binary_layer

        m, src = n.module, n.inputs[0]
        if self._gate_reshape(i, n):
            return
        p = self._sole_pending(src, i)
        continues = isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.PReLU, ClipBlock) + _ACTS) \
            or is_binary_layer(m) or isinstance(m, (nn.Linear, nn.AdaptiveAvgPool2d) + chain._blocks())
        if p is not None and p.type in ("dense_f32", "conv1x1_f32") and \
                (is_binary_layer(m) or isinstance(m, _ACTS + (nn.PReLU,))):
            p = None  # a float layer's output reaches a binary layer through a bitpack, an activation its own op
        if p is not None and continues:
            # the chain converter's own case: a producer with one consumer
            self.bld.pending, self.bld.cur = p, p.in_value
            self._dispatch(n.name, m)
        else:
            v = self.value(src)
            self.bld.pending, self.bld.cur = None, v
            kind = self.bld.values[v].kind
            if is_binary_layer(m):
                if kind in ("int8", "f32"):
                    self.bld.cur = self._sign_of(v, n.name)
                self._dispatch(n.name, m)
            elif chain.is_depthwise(m):
                self._dispatch(n.name, m)  # depthwise: dwconv2d_i8 / dwconv2d_f32 on the value's kind
            elif isinstance(m, nn.Conv2d):
                if src == INPUT or kind == "u8":  # on the image (also behind a padding layer)
                    self._dispatch(n.name, m)  # the int8 input layer
                else:
                    self.bld.float_conv(n.name, m)
            elif isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
                self.bld.pool_op(n.name, m, "avgpool2d" if isinstance(m, nn.AvgPool2d) else "maxpool2d")
            elif isinstance(m, _ACTS):
                self.clamp(n.name, m, kind)
            elif isinstance(m, (nn.PReLU, nn.Sigmoid)):
                if kind == "int8":
                    self.bld.cur = self._float_operands(n.name, v)[0]
                if isinstance(m, nn.PReLU):
                    self.bld.prelu(n.name, m)
                elif self.bld.value().kind != "f32":
                    raise ConversionError(f"layer {n.name!r} (Sigmoid) on a {kind} value: a sigmoid is supported on "
                                          f"float values")
                else:
                    self.bld.emit(n.name, "sigmoid_f32", {}, {}, self.bld.value())
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and kind in ("int8", "f32"):
                if kind == "int8":
                    self.bld.cur = self._float_operands(n.name, v)[0]
                self.bld.affine(n.name, *bn_affine(m))
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, ClipBlock)):
                why = (f"it is shared by {len(self.consumers[self.resolve(src)])} layers"
                       if len(self.consumers[self.resolve(src)]) > 1 else
                       f"its input {self._name(src)} is not a convolution or linear layer")
                raise ConversionError(f"layer {n.name!r} ({type(m).__name__}) on the output of {self._name(src)}: "
                                      f"{why}, and the .onebit format folds a per-channel affine map or clip "
                                      f"only into the output stage of the producing convolution / linear layer")
            else:
                self._dispatch(n.name, m)
        self.state[i] = self.bld.pending if self.bld.pending is not None else self.bld.cur

    def clamp(self, name, m, kind):
        if kind != "f32":
            raise ConversionError(f"layer {name!r} ({type(m).__name__}) on a {kind} value: an activation on "
                                  f"its own is supported on float values")
        lo, hi = (0.0, chain.F32_MAX) if isinstance(m, nn.ReLU) else (float(m.min_val), float(m.max_val))
        self.bld.emit(name, "clamp_f32", {"min": lo, "max": hi}, {}, self.bld.value())

    def join_add(self, i: int, n: Node):
        from onebit.nn.clip import ClipBlock

        if len(n.inputs) != 2:
            raise ConversionError(f"layer {n.name!r}: addition of {len(n.inputs)} branches; two are supported")
        a, b = self.value(n.inputs[0]), self.value(n.inputs[1])
        va, vb = self.bld.values[a], self.bld.values[b]
        if tuple(va.shape) != tuple(vb.shape):
            raise ConversionError(f"layer {n.name!r}: adds values of shapes {list(va.shape)} and "
                                  f"{list(vb.shape)} (HWC); equal shapes are supported")
        users = self.consumers[i]
        clip = None
        if va.kind == vb.kind == "int8" and len(users) == 1 and users[0] != OUTPUT:
            c = self.nodes[users[0]]
            if c.kind == "layer" and isinstance(c.module, ClipBlock) and c.module.qmax == 127:
                clip = users[0]
        if clip is not None:
            self.bld.add(n.name, a, b, self.nodes[clip].module)
            self.absorbed[clip] = i
        else:
            ops = self._float_operands(n.name, a, b)
            self.bld.add(n.name, ops[0], ops[1], nn.Identity())
        self.state[i] = self.bld.cur

    def _gate_reshape(self, i: int, n: Node) -> bool:
        """A Keras ``Reshape`` to ``[1, 1, C]`` read only by multiplications (a squeeze-excitation
        gate): the same C values in NHWC order, no op (:meth:`join_mul` reads the vector)."""
        from onebit.convert.larq.modules import Reshape

        m, users = n.module, self.consumers[i]
        if not (isinstance(m, Reshape) and len(m.target_shape) == 3 and m.target_shape[:2] == (1, 1)) or \
                not users or any(u == OUTPUT or not _is_mul_module(self.nodes[u].module) for u in users):
            return False
        self.state[i] = self.value(n.inputs[0])
        return True

    def join_mul(self, i: int, n: Node):
        """Keras ``Multiply`` of a feature map ``[H, W, C]`` (or a vector ``[C]``) and a per-channel
        vector ``[C]`` (a gate, e.g. a sigmoid dense layer reshaped to ``[1, 1, C]``): the float32
        ``mul_channels_f32`` (int8 operands dequantized); other shapes are refused."""
        if len(n.inputs) != 2:
            raise ConversionError(f"layer {n.name!r}: multiplication of {len(n.inputs)} branches; two are supported")
        a, b = self._float_operands(n.name, self.value(n.inputs[0]), self.value(n.inputs[1]))
        if len(self.bld.values[a].shape) < len(self.bld.values[b].shape):
            a, b = b, a  # the value first, the vector second (float multiplication commutes exactly)
        vb = self.bld.values[b]
        if len(vb.shape) == 3 and vb.shape[:2] == (1, 1):  # a [1, 1, C] map: its C values (NHWC)
            self.bld.cur = b
            b = self.bld.emit(f"{n.name}.flatten", "flatten", {}, {}, Value("f32", (vb.shape[2],)))
        va, vb = self.bld.values[a], self.bld.values[b]
        if len(vb.shape) != 1 or vb.shape[0] != va.shape[-1]:
            raise ConversionError(f"layer {n.name!r}: multiplies values of shapes {list(va.shape)} and "
                                  f"{list(vb.shape)} (HWC); the .onebit format multiplies a value by a per-channel "
                                  f"vector [C] of its channel count (a gate reshaped to [1, 1, C])")
        self.state[i] = self.bld.emit(n.name, "mul_channels_f32", {}, {}, Value("f32", va.shape), inputs=[a, b])

    def _float_operands(self, name, *vals):
        """The values as float32 (an int8 value dequantized; float32 as it is; bits refused)."""
        ops = []
        for v in vals:
            x = self.bld.values[v]
            if x.kind == "int8":
                self.bld.cur = v
                v = self.bld.emit(f"{name}.dequantize", "dequantize", {}, {}, Value("f32", x.shape))
            elif x.kind != "f32":
                raise ConversionError(f"layer {name!r}: an operand is {x.kind}; int8 or float operands "
                                      f"are supported")
            ops.append(v)
        return ops

    def join_concat(self, i: int, n: Node):
        """Channel concatenation (``concat``), left to right: of two int8 values on one grid (one
        scale) as int8, of two bits values as bits, else of float32 values (an int8 operand is
        dequantized: values on different int8 grids are joined in float32, never re-rounded)."""
        if n.module is not None and n.module.dim not in (1, -3):
            raise ConversionError(f"layer {n.name!r}: concatenation along dimension {n.module.dim}; the "
                                  f"channel dimension (1 of NCHW) is supported")
        cur = self.value(n.inputs[0])
        for k, src in enumerate(n.inputs[1:]):
            a, b = cur, self.value(src)
            va, vb = self.bld.values[a], self.bld.values[b]
            if len(va.shape) != 3 or len(vb.shape) != 3 or tuple(va.shape[:2]) != tuple(vb.shape[:2]):
                raise ConversionError(f"layer {n.name!r}: concatenates values of shapes {list(va.shape)} and "
                                      f"{list(vb.shape)} (HWC); feature maps of one height and width are supported")
            same_grid = va.kind == vb.kind == "int8" and va.scale == vb.scale
            if not same_grid and not va.kind == vb.kind == "bits":
                a, b = self._float_operands(n.name, a, b)
                va, vb = self.bld.values[a], self.bld.values[b]
            out = Value(va.kind, (va.shape[0], va.shape[1], va.shape[2] + vb.shape[2]), va.scale)
            cur = self.bld.emit(n.name if k == len(n.inputs) - 2 else f"{n.name}.{k}", "concat", {}, {}, out,
                                inputs=[a, b])
        self.state[i] = cur


def _is_add_module(m) -> bool:
    from onebit.convert.larq.modules import Merge

    return isinstance(m, Merge) and m.op == "add"


def _is_mul_module(m) -> bool:
    from onebit.convert.larq.modules import Merge

    return isinstance(m, Merge) and m.op == "multiply"


def _is_concat_module(m) -> bool:
    from onebit.convert.larq.modules import Concatenate

    return isinstance(m, Concatenate)


def build(model: nn.Module, input_shape, mean, std, float_boundary: bool = False):
    """Convert an eval-mode model (chain or general graph) to (ops, values, tensors).
    ``input_shape`` is [H, W, C]; ``float_boundary``: the first convolution in float32."""
    h, w, c = input_shape
    nodes, out = trace_graph(model, (1, c, h, w))
    if is_chain(nodes, out):
        return chain.build(model, input_shape, mean, std, float_boundary=float_boundary)
    return _GraphBuilder(nodes, out, input_shape, mean, std, float_boundary).run()
