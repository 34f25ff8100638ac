import pytest
import torch
from torch import nn

from onebit.nn import BinaryConv2d
from onebit.prune import PruneError, Pruner, count_bops, set_mask, shrink
from onebit.prune.checkpoint import load_checkpoint, save_pruned


@pytest.mark.parametrize("method", ["latent", "random"])
def test_shrink_keeps_function_when_pruned_channels_are_dead(mnist_small, method):
    model = mnist_small()
    p = Pruner(model, method, "channel", target=0.4).prepare()
    p.prune()
    model.eval()
    x = torch.randn(6, 1, 28, 28)
    feats = {}
    hook = model.fc1.register_forward_hook(lambda m, i, o: feats.__setitem__("fc1", o))
    with torch.no_grad():
        masked, masked_fc1 = model(x), None
        masked_fc1 = feats["fc1"]
    bops = count_bops(model).bops
    p.finalize()
    with torch.no_grad():
        shrunk = model(x)
    hook.remove()
    alive = torch.tensor(p.prune_info["channels"]["fc1"])
    # binary layers: integer outputs identical on the kept channels
    assert torch.equal(feats["fc1"], masked_fc1[:, alive])
    # float classifier: dead channels folded into its bias (float rounding only)
    torch.testing.assert_close(shrunk, masked, rtol=0, atol=1e-4)
    assert model.conv1.out_channels == model.bn1.num_features == model.conv2.in_channels < 16
    assert model.fc.in_features == model.fc1.out_features < 32
    assert model.fc1.in_features == model.conv2.out_channels * 49
    assert all(l.weight_mask is None for l in (model.conv1, model.conv2, model.fc1))
    assert count_bops(model).bops == bops  # the shrunk model does exactly the masked work


def test_shrink_refuses_live_consumer_inputs(toy):
    model = toy()
    mask = torch.ones_like(model.conv1.weight)
    mask[:3] = 0  # three dead filters, but conv2 still reads those channels
    set_mask(model.conv1, mask)
    with pytest.raises(PruneError, match="not pruned"):
        shrink(model)


def test_shrink_toy_with_flatten_and_two_words(toy):
    model = toy()
    p = Pruner(model, "latent", "channel", ratios={"conv1": 0.25, "conv2": 0.5, "fc1": 0.3}).prepare()
    p.prune()
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        before = model(x)
        p.finalize()
        after = model(x)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-4)
    assert model.conv1.out_channels == 18 and model.conv2.out_channels == 8
    assert model.fc1.in_features == 8 * 16 and model.fc1.out_features == 14


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv1 = BinaryConv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = BinaryConv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 36, 3)
        self.input_shape = (1, 6, 6)

    def forward(self, x):
        x = self.conv0(x)
        x = x + self.bn1(self.conv1(x))  # residual: conv1's channels must match the shortcut
        x = self.bn2(self.conv2(x))
        return self.fc(x.flatten(1))


def test_channel_pruning_refuses_residual_layers():
    model = Residual()
    p = Pruner(model, "latent", "channel", target=0.2).prepare()
    assert "conv1" in p.blocked and "conv1" not in p.layers and "conv2" in p.layers
    with pytest.raises(PruneError, match="cannot channel-prune"):
        Pruner(Residual(), "latent", "channel", ratios={"conv1": 0.5}).prepare()
    # weight and word granularity still prune it
    q = Pruner(Residual(), "latent", "word", target=0.3).prepare()
    assert q.prune()["reduction"] >= 0.3


def _base_ckpt(model):
    return {"model_config": dict(model.onebit_config), "state_dict": model.state_dict(),
            "dataset": "mnist", "train_config": {}, "metrics": {}, "epoch": 1, "optimizer": None,
            "scheduler": None, "onebit_version": "0"}


@pytest.mark.parametrize("granularity", ["weight", "channel"])
def test_pruned_checkpoint_roundtrip(mnist_small, tmp_path, granularity):
    model = mnist_small()
    base = _base_ckpt(model)
    p = Pruner(model, "latent", granularity, target=0.35).prepare()
    p.prune()
    p.finalize()
    path = save_pruned(tmp_path / "p.pt", model, base, p.prune_info, {"note": 1})
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["prune_info"]["granularity"] == granularity
    model.eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert count_bops(loaded).bops == p.prune_info["bops"]


def test_repruning_a_shrunk_checkpoint_composes_plans(mnist_small, tmp_path):
    model = mnist_small()
    base = _base_ckpt(model)
    p = Pruner(model, "latent", "channel", target=0.2).prepare()
    p.prune()
    p.finalize()
    first = save_pruned(tmp_path / "a.pt", model, base, p.prune_info)
    model2, ckpt2 = load_checkpoint(first)
    q = Pruner(model2, "random", "channel", target=0.3).prepare()
    q.prune()
    q.finalize()
    second = save_pruned(tmp_path / "b.pt", model2, ckpt2, q.prune_info)
    loaded, ckpt3 = load_checkpoint(second)
    assert ckpt3["prune_info"]["previous"]["granularity"] == "channel"
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model2.eval()(x))
    width = lambda m: (m.conv1.out_channels, m.conv2.out_channels, m.fc1.out_features)  # noqa: E731
    assert width(loaded) == width(model2)
    assert all(a <= b for a, b in zip(width(loaded), width(model))) and sum(width(loaded)) < sum(width(model))
