"""The float twin of a BNN quantized to int8, under the same bit flips as the BNN (RA-BNN's comparison).

The float twin is the zoo model built with ``float_twin=True`` (real weights, ReLU where the
BNN binarizes; :class:`onebit.models.common.Layers`), trained with the BNN's recipe. Rakin et
al. compare BNNs with 8-bit networks, the networks the bit-flip attack (BFA, ICCV 2019) was
defined on; :class:`Int8Twin` makes one from the float twin:

- **quantization**: post-training, symmetric, per output channel, every ``nn.Conv2d`` and
  ``nn.Linear`` weight (first and last layer included): ``s[o] = max|w[o]| / 127``,
  ``q = clamp(round(w / s[o]), -127, 127)`` stored as int8 two's complement (the scheme of the
  engine's int8 layers, :func:`onebit.convert.fold.quantize_weights_int8`). The layers compute
  with ``s[o] * q``; BatchNorm, biases and activations stay float (only the stored weights are
  attacked, as in BFA).
- **sites**: the 8 bits of every int8 weight, with the rule of the ``.onebit`` int8 kind
  (:func:`onebit.robustness.sites.int8_bits`): a flip onto -128 is not taken.
- **random** flips reuse the file study's draws (:func:`onebit.robustness.sites.random_order`,
  same seeds and nesting) on the concatenated int8 weights; **progressive** flips run the
  shared search loop (:func:`onebit.robustness.progressive.search`) with :class:`Int8Weights`:
  per step and layer the bit with the largest first-order loss increase,
  ``dL/dq * s[o] * place(k) * (1 - 2 bit)`` with ``place(k) = 2^k`` for k < 7 and -128 for the
  sign bit (the gradient with respect to the bits), then the layer proposal that raises the
  measured loss most.

Evaluated in PyTorch (the twin has no ``.onebit`` export) on the test images the engine study
uses, ``torch.no_grad``, batches of 500.
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from onebit.robustness.sites import RobustnessError, Sites, TensorSites, flip_bits, int8_bits, random_order

#: Value of bit k of an int8 weight (two's complement).
PLACE = torch.tensor([1, 2, 4, 8, 16, 32, 64, -128], dtype=torch.float32)


@dataclass
class Int8Layer:
    name: str
    module: nn.Module
    q: torch.Tensor  # int8, flat
    scale: torch.Tensor  # float32, (out,)

    def refresh(self, index=None) -> None:
        """Write ``s[o] * q`` into the layer's weight (all of it, or the flat ``index``)."""
        w = self.module.weight
        per = w[0].numel()
        with torch.no_grad():
            if index is None:
                w.copy_((self.q.to(torch.float32).view(w.shape[0], per) * self.scale[:, None]).view_as(w))
            else:
                w.view(-1)[index] = self.q[index].to(torch.float32) * self.scale[index // per]


class Int8Twin:
    """A copy of a float model whose conv and dense weights are int8 (``s[o] * q``)."""

    def __init__(self, model: nn.Module):
        from onebit.convert.fold import quantize_weights_int8
        from onebit.nn.layers import is_binary_layer

        self.model = copy.deepcopy(model).eval()
        self.layers: list[Int8Layer] = []
        for name, m in self.model.named_modules():
            if is_binary_layer(m):
                raise RobustnessError(f"layer {name!r} is binary: the int8 twin is made from the float twin "
                                      f"(the same model trained with float_twin=True, `onebit train --float-twin`)")
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                q, s = quantize_weights_int8(m.weight.detach().cpu().numpy())
                layer = Int8Layer(name, m, torch.from_numpy(q.reshape(-1).copy()),
                                  torch.from_numpy(s.astype(np.float32)))
                layer.refresh()
                self.layers.append(layer)
        if not self.layers:
            raise RobustnessError("the model has no convolution or dense layer to quantize")
        self._offsets = np.cumsum([0] + [lay.q.numel() for lay in self.layers])

    def to_bytes(self) -> bytes:
        """The int8 weights of every layer, concatenated (layer order)."""
        return b"".join(lay.q.numpy().tobytes() for lay in self.layers)

    def set_bytes(self, data: bytes) -> None:
        """Load int8 weights laid out as :meth:`to_bytes` (and refresh the float weights)."""
        if len(data) != self._offsets[-1]:
            raise RobustnessError(f"{len(data)} bytes of int8 weights for a twin of {self._offsets[-1]} weights")
        for lay, a, b in zip(self.layers, self._offsets[:-1], self._offsets[1:]):
            lay.q.copy_(torch.from_numpy(np.frombuffer(data, np.int8, b - a, a).copy()))
            lay.refresh()

    def sites(self) -> Sites:
        """The flippable bits of the int8 weights, offsets into :meth:`to_bytes`."""
        return Sites("int8", [TensorSites(lay.name, lay.name, "weight", int(off), int8_bits(lay.q.numpy()))
                              for lay, off in zip(self.layers, self._offsets[:-1])])

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return accuracy(self.model, x, y)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy (fraction) of ``model`` (eval mode) on ``x``, in batches."""
    correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(y), batch))
    return correct / len(y)


class Int8Weights:
    """Flip target of :func:`onebit.robustness.progressive.search` over an :class:`Int8Twin`:
    a candidate is bit ``8 * i + k`` (bit k of flat weight i) of one layer."""

    kind = "int8"

    def __init__(self, twin: Int8Twin):
        self.by_name = {lay.name: lay for lay in twin.layers}
        self.layers = [(lay.name, lay.module) for lay in twin.layers]
        self.done = {lay.name: torch.zeros(8 * lay.q.numel(), dtype=torch.bool) for lay in twin.layers}

    def propose(self, name: str, m: nn.Module):
        if m.weight.grad is None:
            return None
        lay = self.by_name[name]
        per = m.weight[0].numel()
        u = lay.q.view(torch.uint8).to(torch.int64)
        bits = (u[:, None] >> torch.arange(8)) & 1
        dq = m.weight.grad.detach().reshape(-1) * lay.scale.repeat_interleave(per)  # dL/dq
        gain = (dq[:, None] * PLACE[None, :] * (1 - 2 * bits).to(torch.float32)).reshape(-1)
        onto_min = ((u[:, None] ^ (1 << torch.arange(8))) == 0x80).reshape(-1)
        gain[self.done[name] | onto_min] = -torch.inf
        idx = int(torch.argmax(gain))
        return idx if torch.isfinite(gain[idx]) else None

    def flip(self, name: str, m: nn.Module, bit: int) -> None:
        lay = self.by_name[name]
        u = lay.q.view(torch.uint8)
        u[bit // 8] ^= 1 << (bit % 8)
        lay.refresh(bit // 8)

    def mark(self, name: str, bit: int) -> None:
        self.done[name][bit] = True

    def describe(self, name: str, m: nn.Module, bit: int) -> dict:
        i = bit // 8
        return {"layer": name, "index": i, "bit": bit % 8,
                "position": [int(v) for v in np.unravel_index(i, tuple(m.weight.shape))],
                "new_value": int(self.by_name[name].q[i])}


def load_twin(checkpoint, dataset: str, bnn_checkpoint=None) -> tuple[nn.Module, dict]:
    """The float twin of ``checkpoint``, checked: trained on ``dataset``, built with
    ``float_twin``, and (given the BNN's checkpoint) the BNN's model otherwise."""
    from onebit.prune.checkpoint import load_checkpoint
    from onebit.train import read_checkpoint

    net, ckpt = load_checkpoint(checkpoint)
    if ckpt["dataset"] != dataset:
        raise RobustnessError(f"--twin {checkpoint} was trained on {ckpt['dataset']!r}, not {dataset!r}")
    cfg = dict(ckpt["model_config"])
    if not cfg.get("float_twin"):
        raise RobustnessError(f"--twin {checkpoint} is not a float twin (train the same model with --float-twin)")
    if bnn_checkpoint is not None:
        a = {k: v for k, v in cfg.items() if k != "float_twin"}
        b = {k: v for k, v in dict(read_checkpoint(bnn_checkpoint)["model_config"]).items() if k != "float_twin"}
        if a != b:
            raise RobustnessError(f"--twin {checkpoint} is not the BNN's twin: its model is {a}, the BNN's {b}")
    return net, ckpt


def twin_study(checkpoint, dataset: str, flips, mode: str = "random", seed: int = 0, trials: int = 3,
               limit: int | None = None, threads: int | None = None, attack_batch: int = 128,
               bnn_checkpoint=None, progress=None) -> dict:
    """The record of :func:`onebit.robustness.study` for the int8-quantized float twin in
    ``checkpoint``: the same flip counts, seeds, test images (first ``limit``) and attack batch.
    ``bnn_checkpoint``: the BNN's checkpoint, to check that ``checkpoint`` is its twin."""
    from onebit.data import normalize
    from onebit.robustness import progressive as pbs
    from onebit.robustness.study import MODES, _row, test_split

    if mode not in MODES:
        raise RobustnessError(f"unknown mode {mode!r}; use random or progressive")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise RobustnessError(f"trials must be a positive integer, got {trials!r}")
    flips = sorted(set(int(n) for n in flips))
    t0 = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    net, ckpt = load_twin(checkpoint, dataset, bnn_checkpoint)
    size = int(net.input_shape[1]) if dataset == "imagenette" else None
    images, labels = test_split(dataset, limit, size)
    x = torch.from_numpy(normalize(images, dataset, size))
    y = torch.from_numpy(labels.astype(np.int64))
    twin = Int8Twin(net)
    sites = twin.sites()
    if flips and flips[-1] > sites.count:
        raise RobustnessError(f"{flips[-1]} flips requested but the int8 twin has only {sites.count} int8 bits")
    float_acc = accuracy(net, x, y)
    clean = twin.accuracy(x, y)
    base = twin.to_bytes()
    record = {
        "model": os.fspath(checkpoint), "dataset": dataset, "mode": mode, "seed": seed, "images": int(len(y)),
        "float_accuracy": float_acc, "clean_accuracy": clean, "flips": flips,
        "quantization": "int8 weights of every conv and dense layer, symmetric per output channel "
                        "(s = max|w|/127, q in [-127, 127]); BatchNorm, biases and activations float",
        "sites": {"int8": {"bits": sites.count, "per_op": sites.per_op()}}, "rows": [],
    }
    if mode == "random":
        record["trials"] = trials
        accs = {n: [] for n in flips}
        redrawn = {n: [] for n in flips}
        for t in range(trials):
            order = random_order(sites, flips[-1], seed, t)
            for n in flips:
                flipped, info = flip_bits(base, sites, order, n)
                twin.set_bytes(flipped)
                accs[n].append(twin.accuracy(x, y))
                redrawn[n].append(info["redrawn"])
                if progress is not None:
                    progress(1)
        twin.set_bytes(base)
        record["rows"] = [_row("int8", n, accs[n], clean, redrawn=int(sum(redrawn[n]))) for n in flips]
    else:
        xa, ya = pbs.attack_batch(dataset, attack_batch, seed, size)
        target = Int8Weights(twin)
        searched = pbs.search(twin.model, xa, ya, flips[-1], progress=progress, target=target)
        twin.set_bytes(base)
        done = 0
        for n in flips:
            for f in searched[done:n]:
                target.flip(f["layer"], None, 8 * f["index"] + f["bit"])
            done = n
            record["rows"].append(_row("int8", n, [twin.accuracy(x, y)], clean,
                                       attack_loss=searched[n - 1]["loss"] if n else None))
        twin.set_bytes(base)
        record["search"] = {"attack_batch": int(len(ya)), "flips": searched}
    record["seconds"] = time.perf_counter() - t0
    return record
