"""A small trained mnist-small checkpoint and its export, shared by the robustness tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mnist_model(tmp_path_factory, datasets_root):
    """``(checkpoint path, .onebit path)`` of mnist-small trained on 1024 images for one epoch."""
    import torch

    from onebit.convert import export
    from onebit.train import TrainConfig, load_checkpoint, train

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tmp = tmp_path_factory.mktemp("robust")
        train(TrainConfig(model="mnist-small", dataset="mnist", epochs=1, batch_size=64, lr=2e-3,
                          limit_train=1024, limit_test=128, progress=False, device="cpu", threads=1,
                          out=str(tmp / "m.pt")))
        model, _ = load_checkpoint(tmp / "m.pt")
        export(model, tmp / "m.onebit", dataset="mnist")
    finally:
        torch.set_num_threads(n)
    return tmp / "m.pt", tmp / "m.onebit"
