import pytest
import torch

import onebit
from onebit.prune import PruneError, Pruner, count_bops, get_mask
from onebit.prune.granularity import group_index


def _copy(make, model):
    other = make()
    other.load_state_dict(model.state_dict())
    return other


@pytest.mark.parametrize("granularity", ["weight", "word", "channel"])
def test_pruner_state_dict_roundtrip(mnist_small, granularity):
    model = mnist_small()
    fresh = _copy(mnist_small, model)
    p = Pruner(model, "latent", granularity, target=0.3).prepare()
    p.prune()
    p.step()
    state = p.state_dict()
    q = Pruner(fresh, "latent", granularity, target=0.3).prepare()
    q.load_state_dict(state)
    assert q.step_count == p.step_count == 1
    for (n, a), (_, b) in zip(p._all.items(), q._all.items()):
        assert torch.equal(get_mask(a), get_mask(b)), n
    x = torch.randn(3, 1, 28, 28)
    model.eval(), fresh.eval()
    assert torch.equal(model(x), fresh(x))
    assert q.report()["bops"] == p.report()["bops"]


@pytest.mark.parametrize("granularity", ["weight", "word", "channel"])
def test_pruner_exact_sparsity_per_layer(toy, granularity):
    model = toy()
    ratios = {"conv1": 0.3, "conv2": 0.5, "fc1": 0.25}
    p = Pruner(model, "latent", granularity, ratios=ratios).prepare()
    p.prune()
    for name, r in ratios.items():
        layer = dict(model.named_modules())[name]
        idx, n = group_index(tuple(layer.weight.shape), granularity, (16, 4, 4) if name == "fc1" else None)
        mask = get_mask(layer)
        per_group = torch.zeros(n).index_add_(0, idx.flatten(), mask.flatten())
        pruned_groups = int((per_group == 0).sum())
        if granularity == "channel" and name != "conv1":
            # channel pruning of the producer also kills the consumer's inputs, never whole filters
            assert pruned_groups == round(r * n)
        else:
            assert pruned_groups == round(r * n), name
        if granularity == "weight":
            assert int((mask == 0).sum()) == round(r * layer.weight.numel())
        assert p.achieved[name] == pytest.approx(round(r * n) / n)


@pytest.mark.parametrize("method", ["latent", "random"])
@pytest.mark.parametrize("granularity", ["weight", "word", "channel"])
@pytest.mark.parametrize("allocation", ["uniform", "global"])
def test_pruner_meets_bops_target(mnist_small, method, granularity, allocation):
    model = mnist_small()
    p = Pruner(model, method, granularity, target=0.4, allocation=allocation).prepare()
    rep = p.prune()
    assert rep["reduction"] >= 0.4
    bops = count_bops(model).bops
    assert bops == rep["bops"]
    assert 1 - bops / p.base_bops == pytest.approx(rep["reduction"])
    # onebit.summary counts the same binary ops (pruned weights excluded)
    assert onebit.summary(model).totals["binary_macs"] == bops
    if granularity == "weight":
        assert rep["reduction"] < 0.401


def test_pruner_counts_match_hand_count(toy):
    model = toy()
    p = Pruner(model, "latent", "weight", ratios={"conv1": 0.5}).prepare()
    p.prune()
    rep = p.report()["layers"]
    # conv1: 8x8 output positions, 24*70*9 weights, half pruned
    assert rep["conv1"]["dense_bops"] == 64 * 24 * 70 * 9
    assert rep["conv1"]["bops"] == 64 * (24 * 70 * 9 - round(0.5 * 24 * 70 * 9))
    assert rep["fc1"]["bops"] == 256 * 20


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_pruned_weights_stay_zero_through_training(mnist_small, opt):
    torch.manual_seed(1)
    model = mnist_small()
    if opt == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))

    def train_step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):  # build up momentum before pruning
        train_step()
    p = Pruner(model, "latent", "weight", target=0.5, optimizer=optimizer).prepare()
    p.prune()
    layers = dict(p.layers)
    before = {n: l.weight.detach().clone() for n, l in layers.items()}
    for _ in range(5):
        train_step()
        p.step()
        for n, l in layers.items():
            m = l.weight_mask
            assert torch.all(l.weight[m == 0] == 0), n
            assert torch.all(l.quantized_weight()[m == 0] == 0), n
            for v in optimizer.state[l.weight].values():
                if torch.is_tensor(v) and v.shape == m.shape:
                    assert torch.all(v[m == 0] == 0), n
    changed = sum(int((l.weight != before[n]).sum()) for n, l in layers.items())
    assert changed > 0  # live weights did train


def test_pruned_weights_stay_zero_without_optimizer_hook(mnist_small):
    model = mnist_small()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for _ in range(2):
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    p = Pruner(model, "latent", "word", target=0.3).prepare()  # optimizer unknown to the pruner
    p.prune()
    for _ in range(3):
        optimizer.zero_grad()
        out = model(x)  # the forward pre-hook re-zeroes any drift before it is used
        for n, l in p.layers.items():
            assert torch.all(l.weight[l.weight_mask == 0] == 0), n
        torch.nn.functional.cross_entropy(out, y).backward()
        for n, l in p.layers.items():
            assert torch.all(l.weight.grad[l.weight_mask == 0] == 0), n
        optimizer.step()


def test_pruner_gradual_schedule_is_monotone(mnist_small):
    model = mnist_small()
    p = Pruner(model, "random", "weight", target=0.5, schedule="gradual", begin_step=2, end_step=10,
               frequency=2).prepare()
    prev = {n: get_mask(l).clone() for n, l in p.layers.items()}
    targets = []
    for _ in range(12):
        p.step()
        targets.append(p.current_target)
        for n, l in p.layers.items():
            now = get_mask(l)
            assert torch.all(now <= prev[n])  # masks only grow
            prev[n] = now.clone()
    assert targets[0] == 0.0
    assert targets == sorted(targets)
    assert targets[-1] == pytest.approx(0.5)
    assert p.report()["reduction"] >= 0.5


def test_pruner_bad_input_raises(mnist_small):
    model = mnist_small()
    with pytest.raises(PruneError, match="method"):
        Pruner(model, "magnitude", target=0.4)
    with pytest.raises(PruneError, match="granularity"):
        Pruner(model, "latent", "tile", target=0.4)
    with pytest.raises(PruneError, match="target"):
        Pruner(model, "latent", target=1.5)
    with pytest.raises(PruneError, match="exactly one"):
        Pruner(model, "latent")
    with pytest.raises(PruneError, match="prepare"):
        Pruner(model, "latent", target=0.4).prune()
    p = Pruner(model, "flip", target=0.4).prepare()
    with pytest.raises(PruneError, match="flip counts"):
        p.prune()
    with pytest.raises(PruneError, match="unreachable"):
        Pruner(mnist_small(), "latent", "channel", target=0.99).prepare().prune()
    with pytest.raises(PruneError, match="unknown layers"):
        Pruner(mnist_small(), "latent", ratios={"nope": 0.3}).prepare()


def test_pruner_finalize_bakes_and_detaches(mnist_small):
    model = mnist_small()
    p = Pruner(model, "latent", "weight", target=0.4).prepare()
    p.prune()
    model = p.finalize()
    assert p.prune_info["reduction"] >= 0.4
    assert not any(l._forward_pre_hooks for l in p.layers.values())
    for l in p.layers.values():
        assert torch.all(l.weight[l.weight_mask == 0] == 0)
    with pytest.raises(PruneError, match="finalized"):
        p.step()


def test_pruned_model_allows_two_forwards_before_backward(mnist_small):
    model = mnist_small()
    p = Pruner(model, "latent", "weight", target=0.3).prepare()
    p.prune()
    x = torch.randn(4, 1, 28, 28)
    loss = model(x).sum() + model(x).sum()  # gradient accumulation style
    loss.backward()
    for l in p.layers.values():
        assert torch.all(l.weight.grad[l.weight_mask == 0] == 0)
