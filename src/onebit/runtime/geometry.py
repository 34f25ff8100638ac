"""The output size of a convolution or pooling window (docs/format.md §3, §7.3), torch-free:
the one formula the file validator, the kernels' wrappers, their NumPy oracles and the
converter share."""
from __future__ import annotations


def output_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False,
                padding_end: int | None = None) -> int:
    """PyTorch geometry: ``floor((size + padding + padding_end - kernel) / stride) + 1`` with
    ``padding`` before the input and ``padding_end`` (default ``padding``) after it.

    With ``ceil_mode`` (pooling, docs/format.md §7.3): ceil instead of floor, minus one when that
    last window would start at or after ``size + padding`` (outside the input and its left padding).
    """
    span = padding + (padding if padding_end is None else padding_end)
    if not ceil_mode:
        return (size + span - kernel) // stride + 1
    out = -(-(size + span - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out
