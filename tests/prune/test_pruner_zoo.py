import pytest
import torch

import onebit.models
from onebit.prune import PruneError, Pruner
from onebit.prune.granularity import group_index


@pytest.mark.parametrize("name", ["cifar-binarynet", "cifar-nin", "cifar-alexnet", "imagenette-small"])
def test_zoo_channel_pruning_shrinks_with_same_function(name, randomize):
    torch.manual_seed(0)
    kw = {"input_size": 64} if name == "imagenette-small" else {}
    model = randomize(onebit.models.create(name, width=0.125, **kw)).eval()
    x = torch.randn(2, *model.input_shape)
    p = Pruner(model, "latent", "channel", target=0.3).prepare()
    assert not p.blocked
    rep = p.prune()
    assert rep["reduction"] >= 0.3
    with torch.no_grad():
        masked = model(x)
        p.finalize()
        shrunk = model(x)
    torch.testing.assert_close(shrunk, masked, rtol=0, atol=1e-4)
    assert onebit.summary(model).totals["binary_macs"] == rep["bops"]


def test_zoo_residual_models_refuse_channel_but_take_word():
    model = onebit.models.create("birealnet18", width=0.125, stem="cifar")
    with pytest.raises(PruneError, match="residual"):
        Pruner(model, "latent", "channel", target=0.3).prepare()
    rep = Pruner(model, "latent", "word", target=0.3).prepare().prune()
    assert rep["reduction"] >= 0.3


def test_word_groups_of_dense_layer_use_flattened_map_in_pruner(mnist_small):
    model = mnist_small()  # fc1 reads the flattened (16, 7, 7) map of conv2
    p = Pruner(model, "latent", "word", target=0.2).prepare()
    idx, n = p.groups["fc1"]
    ref, n_ref = group_index((32, 784), "word", (16, 7, 7))
    assert n == n_ref and torch.equal(idx, ref)
