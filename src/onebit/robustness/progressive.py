"""Progressive bit search (the bit-flip attack of Rakin et al., ICCV 2019) on binary weights.

The search runs on the PyTorch model the ``.onebit`` file was exported from. Each iteration:

1. forward and backward pass on the attacker's batch ``(x, y)`` (model in eval mode), giving
   the gradient ``g`` of the cross-entropy with respect to the latent weights (straight-through:
   the gradient of the binary weight ``b = sign(w)``);
2. in-layer search: in every binary layer, the weight whose flip ``b -> -b`` raises the loss
   most to first order, ``argmax g * (-2 b)``, over weights not yet flipped, not pruned and
   with a non-zero latent value;
3. cross-layer search: each layer's candidate is flipped alone and the loss measured; the
   flip that raises it most is kept.

A flip negates the latent weight (``w -> -w``), so ``sign`` flips while ``|w|`` (and with it
any XNOR channel scale the converter folds) stays the same. The flips are then carried to the
file by exporting the flipped model (:func:`file_flips`): the exported tensors must differ from
the original export only in binary weight bits, one bit per flip, and those bits are flipped in
the given ``.onebit`` file.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from onebit.robustness.sites import RobustnessError, Sites, header_entries


def binary_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    from onebit.nn.layers import is_binary_layer

    return [(n, m) for n, m in model.named_modules() if is_binary_layer(m) and m.weight_precision == 1]


def _negate(layer, index: int) -> None:
    with torch.no_grad():
        layer.weight.view(-1)[index] *= -1


@torch.no_grad()
def _loss(model, x, y) -> float:
    return float(F.cross_entropy(model(x), y))


class BinaryWeights:
    """What the search flips in a BNN: one binary weight ``b = sign(w)`` per flip, by negating
    its latent weight. A candidate is a flat index into the layer's weight.

    Every flip target offers ``kind``, ``layers`` (name, module with a ``weight`` parameter whose
    gradient the search computes), ``propose`` (the not yet flipped candidate of one layer with
    the largest first-order loss increase, or None), ``flip`` (its own inverse), ``describe``."""

    kind = "binary"

    def __init__(self, model: torch.nn.Module):
        self.layers = binary_layers(model)
        if not self.layers:
            raise RobustnessError("the model has no binary layers: nothing for the bit search to flip")
        self.done = {name: torch.zeros(m.weight.numel(), dtype=torch.bool) for name, m in self.layers}

    def propose(self, name: str, m: torch.nn.Module):
        w = m.weight.detach().reshape(-1)
        g = m.weight.grad
        if g is None:
            return None
        b = torch.where(w >= 0, 1.0, -1.0)
        gain = (g.detach().reshape(-1) * (-2.0 * b)).clone()
        excluded = self.done[name] | (w == 0)
        if m.weight_mask is not None:
            excluded |= m.weight_mask.detach().reshape(-1) == 0
        gain[excluded] = -torch.inf
        idx = int(torch.argmax(gain))
        return idx if torch.isfinite(gain[idx]) else None

    def flip(self, name: str, m: torch.nn.Module, idx: int) -> None:
        _negate(m, idx)

    def mark(self, name: str, idx: int) -> None:
        self.done[name][idx] = True

    def describe(self, name: str, m: torch.nn.Module, idx: int) -> dict:
        return {"layer": name, "index": idx,
                "position": [int(v) for v in np.unravel_index(idx, tuple(m.weight.shape))]}


def search(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, n_flips: int,
           progress=None, target=None) -> list[dict]:
    """``n_flips`` steps of the progressive bit search; ``model`` is modified in place.

    ``target`` says which bits are flipped (default :class:`BinaryWeights` of ``model``; the
    int8 weights of a quantized float model: :class:`onebit.robustness.int8_twin.Int8Weights`).
    Returns one record per flip: the target's description of the flipped bit (binary: ``layer``,
    ``index``, the flat index into the layer's weight, ``position``, the weight index tuple) and
    ``loss`` (on the attack batch after the flip)."""
    target = BinaryWeights(model) if target is None else target
    model.eval()
    record = []
    for step in range(n_flips):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        best = None
        for name, m in target.layers:
            cand = target.propose(name, m)
            if cand is None:
                continue
            target.flip(name, m, cand)
            loss = _loss(model, x, y)
            target.flip(name, m, cand)
            if best is None or loss > best[3]:
                best = (name, m, cand, loss)
        if best is None:
            raise RobustnessError(f"no {target.kind} bit left to flip after {step} flips")
        name, m, cand, loss = best
        target.flip(name, m, cand)
        target.mark(name, cand)
        record.append({**target.describe(name, m, cand), "loss": loss})
        if progress is not None:
            progress(1)
    model.zero_grad(set_to_none=True)
    return record


def attack_batch(dataset: str, n: int, seed: int, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The attacker's batch: ``n`` training images of a seeded draw (sorted), normalized."""
    from onebit.data import load, normalize

    images, labels = load(dataset, "train", size=size) if size else load(dataset, "train")
    pick = np.sort(np.random.default_rng(seed).choice(len(labels), size=min(n, len(labels)), replace=False))
    x = torch.from_numpy(normalize(np.asarray(images[pick]), dataset, size))
    y = torch.from_numpy(np.asarray(labels[pick], dtype=np.int64))
    return x, y


def apply(model: torch.nn.Module, flips: list[dict]) -> torch.nn.Module:
    """A copy of ``model`` with the recorded flips applied."""
    m = copy.deepcopy(model)
    modules = dict(m.named_modules())
    for f in flips:
        _negate(modules[f["layer"]], f["index"])
    return m


def tensor_bytes(data: bytes) -> dict[str, bytes]:
    out = {}
    for name, (dt, shape, off) in header_entries(data).items():
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(_NP[dt]).itemsize
        out[name] = bytes(data[off:off + size])
    return out


_NP = {"U8": "uint8", "I8": "int8", "I32": "int32", "U64": "uint64", "F32": "float32"}


def check_same_model(exported: bytes, data: bytes, what: str) -> None:
    """The tensors of ``exported`` (from the checkpoint) equal those of the file ``data``."""
    a, b = tensor_bytes(exported), tensor_bytes(data)
    if set(a) != set(b):
        raise RobustnessError(f"{what}: the checkpoint exports a different graph than the model file "
                              f"(tensors {sorted(set(a) ^ set(b))[:4]} differ)")
    differ = [k for k in a if a[k] != b[k]]
    if differ:
        raise RobustnessError(f"{what}: the model file was not exported from this checkpoint "
                              f"(tensors {differ[:4]} differ)")


def file_flips(base_export: bytes, flipped_export: bytes, data: bytes, sites: Sites, n: int) -> bytes:
    """``data`` (the model file) with the bits where the two exports differ flipped.

    The exports must differ in exactly ``n`` bits, all of them binary weight sites."""
    a, b = tensor_bytes(base_export), tensor_bytes(flipped_export)
    site_of = {t.tensor: t for t in sites.tensors}
    buf = bytearray(data)
    total = 0
    for name in a:
        if a[name] == b[name]:
            continue
        if name not in site_of:
            raise RobustnessError(f"flipping binary weights changed tensor {name!r}, which holds no "
                                  f"binary weights: the flips cannot be carried to the file")
        x = np.frombuffer(a[name], np.uint8) ^ np.frombuffer(b[name], np.uint8)
        bits = np.flatnonzero(np.unpackbits(x, bitorder="little"))
        if not np.isin(bits, site_of[name].bits).all():
            raise RobustnessError(f"flipped export differs from the original in non-weight bits of {name!r}")
        off = site_of[name].offset
        for bit in bits:
            buf[off + bit // 8] ^= 1 << (int(bit) % 8)
        total += len(bits)
    if total != n:
        raise RobustnessError(f"{n} flips in the PyTorch model changed {total} bits of the exported file")
    from onebit.runtime import format as fmt

    out = bytes(buf)
    fmt.loads(out)
    return out
