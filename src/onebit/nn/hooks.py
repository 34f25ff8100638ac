"""One forward pass in eval mode for forward hooks to read (pruning, BOPs, data widths)."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def eval_forward(model: nn.Module, x: torch.Tensor, hooks: Iterable = ()):
    """``model(x)`` in eval mode (batch-norm running statistics untouched); afterwards, also when
    the forward raises, the model's training flag is restored and ``hooks`` (handles) removed."""
    was_training = model.training
    model.eval()
    try:
        return model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
