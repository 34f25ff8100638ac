"""Shared fixtures for the training tests: real MNIST from the offline data root, small runs."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield  # determinism and a fair share of the 2-core machine


@pytest.fixture(scope="session")
def small_config():
    """Factory: a tiny mnist-small run (384 train / 256 test images, 2 epochs, batch 64)."""
    return _small_config


def _small_config(tmp_path, **kw):
    from onebit.train import TrainConfig

    base = dict(model="mnist-small", dataset="mnist", epochs=2, batch_size=64, lr=2e-3,
                limit_train=384, limit_test=256, seed=0, progress=False, device="cpu", threads=1,
                out=str(tmp_path / "ckpt.pt"))
    base.update(kw)
    return TrainConfig(**base)
