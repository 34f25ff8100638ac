"""Fixtures of the CLI tests: torch's thread count restored after every test (commands set it),
and an untrained training checkpoint for the ``onebit prune`` tests."""
import pytest


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture
def ckpt(tmp_path, datasets_root):
    """An (untrained) mnist-small checkpoint at width 0.25 (conv1 8->16, conv2 16->16, fc1 784->32),
    seeded, with randomized BatchNorm statistics."""
    import torch

    import onebit.models
    from onebit.models import randomize_bn
    from onebit.train import save_checkpoint

    torch.manual_seed(0)
    model = randomize_bn(onebit.models.create("mnist-small", width=0.25), 0)
    path = tmp_path / "base.pt"
    save_checkpoint(path, {"model_config": dict(model.onebit_config), "state_dict": model.state_dict(),
                           "dataset": "mnist", "train_config": {}, "metrics": {}, "epoch": 0,
                           "optimizer": None, "scheduler": None, "onebit_version": "0"})
    return path
