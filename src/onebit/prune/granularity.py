"""Pruning granularities: how a layer's weights are grouped into units that are kept or
removed together.

- ``weight``: every weight is its own group (unstructured; the engine needs a mask).
- ``word``: the engine's packed granularity. Binary weights are packed OHWI along the input
  channels into 64-bit words (docs/format.md §2), so one group is the 64 input channels
  ``[64j, 64j+64)`` at one kernel tap ``(kh, kw)`` of one output channel; a pruned word is work
  the kernel can skip. For a dense layer the word runs over its input vector in the engine's
  NHWC flatten order ``(h*W + w)*C + c`` when the layer flattens a ``(C, H, W)`` map.
- ``block``: the engine's AVX2 register tile. One group is 8 consecutive output channels
  ``[8b, 8b+8)`` x one packed word (64 input channels) x one kernel tap: the work one tile of the
  masked kernel skips when the whole block is pruned. Dense layers: 8 outputs x one 64-feature
  word in the NHWC flatten order (as ``word``). The last block of a layer whose output count is
  not a multiple of 8 (or whose input channels are not a multiple of 64) is smaller.
- ``channel``: one group per output channel (filter). Structured: the filter and the next
  layer's matching inputs are removed (``onebit.prune.shrink``). With a channel multiple ``m``
  (``Pruner(channel_multiple=m)``, e.g. 64: the packed word) every pruned layer keeps a multiple
  of ``m`` channels (:func:`aligned_count`), so the next layer loses whole words.
"""
from __future__ import annotations

import torch

from onebit.prune.layers import PruneError

GRANULARITIES = ("weight", "word", "block", "channel")
WORD_BITS = 64
BLOCK_CHANNELS = 8  # output channels of one AVX2 tile (docs/kernels.md)


def group_index(weight_shape: tuple[int, ...], granularity: str,
                input_chw: tuple[int, int, int] | None = None) -> tuple[torch.Tensor, int]:
    """``(index, n_groups)``: a LongTensor of the weight's shape giving each weight's group."""
    shape = tuple(weight_shape)
    out = shape[0]
    if granularity == "weight":
        n = 1
        for s in shape:
            n *= s
        return torch.arange(n).view(shape), n
    if granularity == "channel":
        per = 1
        for s in shape[1:]:
            per *= s
        return torch.arange(out).view(out, *([1] * (len(shape) - 1))).expand(shape).contiguous(), out
    if granularity not in ("word", "block"):
        raise PruneError(f"unknown granularity {granularity!r}; choose one of {GRANULARITIES}")
    # word: one group per output channel; block: one per 8 consecutive output channels
    per = 1 if granularity == "word" else BLOCK_CHANNELS
    if len(shape) == 4:
        o, cin, kh, kw = shape
        words = -(-cin // WORD_BITS)
        rows = -(-o // per)
        c = torch.arange(cin).view(1, cin, 1, 1) // WORD_BITS
        i = torch.arange(kh).view(1, 1, kh, 1)
        j = torch.arange(kw).view(1, 1, 1, kw)
        oo = torch.arange(o).view(o, 1, 1, 1) // per
        idx = ((oo * words + c) * kh + i) * kw + j
        return idx.expand(shape).contiguous(), rows * words * kh * kw
    if len(shape) == 2:
        o, fin = shape
        feat = torch.arange(fin)
        if input_chw is not None:
            c_, h_, w_ = input_chw
            if c_ * h_ * w_ != fin:
                raise PruneError(f"flattened input {input_chw} does not match {fin} features")
            # PyTorch flattens NCHW: f = c*HW + s; the engine packs NHWC: n = s*C + c.
            c = feat // (h_ * w_)
            s = feat % (h_ * w_)
            feat = s * c_ + c
        words = -(-fin // WORD_BITS)
        idx = (torch.arange(o) // per).view(o, 1) * words + (feat // WORD_BITS).view(1, fin)
        return idx, -(-o // per) * words
    raise PruneError(f"{granularity} granularity needs a 2-D or 4-D weight, got shape {shape}")


def aligned_count(n: int, want: int, multiple: int, lo: int = 1, hi: int | None = None) -> int:
    """Kept channel count of a layer with ``n`` output channels whose allocation asks to keep
    ``want``, when kept counts must be multiples of ``multiple``: the multiple of ``multiple``
    nearest ``want`` (a tie keeps more) among those in ``[lo, hi]``, where ``n`` itself (the layer
    unpruned) is also allowed while ``hi == n``. ``lo`` is the fewest channels the layer may keep
    (``max_ratio``), ``hi`` the channels still alive (default ``n``; masks only grow). A layer with
    ``n <= multiple`` is never pruned; if no multiple fits ``[lo, hi]``, ``hi`` is returned (the
    layer keeps what it has)."""
    if multiple < 1:
        raise PruneError(f"channel multiple must be >= 1, got {multiple}")
    hi = n if hi is None else min(hi, n)
    if multiple == 1:
        return max(lo, min(hi, want))
    if n <= multiple:
        return n if hi == n else hi
    cands = list(range(-(-max(lo, 1) // multiple) * multiple, hi + 1, multiple))
    if hi == n and n % multiple:
        cands.append(n)
    if not cands:
        return hi
    return min(cands, key=lambda k: (abs(k - want), -k))


def group_sizes(index: torch.Tensor, n_groups: int) -> torch.Tensor:
    return torch.bincount(index.reshape(-1), minlength=n_groups)


def group_mean(values: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean of ``values`` over each group (the group's score)."""
    v = values.detach().reshape(-1).double().cpu()
    idx = index.reshape(-1)
    sums = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, idx, v)
    return sums / group_sizes(index, n_groups).clamp(min=1).double()


def expand_keep(keep: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """0/1 weight mask from a per-group keep vector."""
    return keep[index].float()


def word_blocks(mask: torch.Tensor) -> torch.Tensor:
    """Active packed words of a conv mask, in the engine's OHWI word order: a bool tensor
    ``(Cout, KH, KW, W64)`` that is True where any of the word's 64 input channels is kept.

    For a mask pruned at ``word`` granularity this is exactly the list of (tap, word) blocks a
    kernel must visit per output channel (``active.nonzero()``); :func:`is_word_structured`
    says whether the mask is constant inside every word (so no per-bit mask is needed)."""
    if mask.dim() != 4:
        raise PruneError(f"word_blocks needs a conv mask (Cout, Cin, KH, KW), got shape {tuple(mask.shape)}")
    o, cin, kh, kw = mask.shape
    words = -(-cin // WORD_BITS)
    padded = torch.zeros(o, words * WORD_BITS, kh, kw, dtype=torch.bool, device=mask.device)
    padded[:, :cin] = mask != 0
    return padded.view(o, words, WORD_BITS, kh, kw).any(dim=2).permute(0, 2, 3, 1).contiguous()


def is_word_structured(mask: torch.Tensor) -> bool:
    """True when every packed word of a conv mask is all kept or all pruned."""
    o, cin, kh, kw = mask.shape
    active = word_blocks(mask)  # (O, KH, KW, W64)
    expanded = active.permute(0, 3, 1, 2).repeat_interleave(WORD_BITS, dim=1)[:, :cin]
    return bool(torch.equal(expanded, mask != 0))
