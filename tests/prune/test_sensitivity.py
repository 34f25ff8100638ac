import pytest
import torch

from onebit.prune import PruneError, Pruner, count_bops
from onebit.prune.sensitivity import SensitivityCurves, allocate, sweep


def _agreement(reference, x):
    with torch.no_grad():
        ref = reference(x).argmax(1)

    def evaluate(model):
        model.eval()
        with torch.no_grad():
            return float((model(x).argmax(1) == ref).float().mean())

    return evaluate



def _toy_curves(toy, granularity):
    """The toy model in eval mode and its latent-pruning sensitivity curves (ratios 0.2, 0.5, 0.8)."""
    model = toy()
    model.eval()
    evaluate = _agreement(model, torch.randn(64, 1, 8, 8))
    return model, sweep(model, evaluate, method="latent", granularity=granularity, ratios=(0.2, 0.5, 0.8))


@pytest.mark.parametrize("granularity", ["weight", "channel"])
def test_allocator_meets_global_target_on_toy_model(toy, granularity):
    model, curves = _toy_curves(toy, granularity)
    assert curves.baseline == 1.0
    assert set(curves.accuracy) == {"conv1", "conv2", "fc1"}
    assert all(len(v) == 3 for v in curves.accuracy.values())
    p = Pruner(model, "latent", granularity, target=0.4).prepare()
    alloc = allocate(curves, 0.4, p.reduction_fn())
    assert alloc["reduction"] >= 0.4
    p.prune(ratios=alloc["ratios"])
    assert 1 - count_bops(model).bops / p.base_bops >= 0.4


def test_allocator_spares_the_sensitive_layer():
    curves = SensitivityCurves(baseline=0.9, ratios=[0.2, 0.4, 0.6, 0.8],
                               accuracy={"a": [0.9, 0.9, 0.89, 0.88], "b": [0.7, 0.5, 0.3, 0.1]},
                               layer_bops={"a": 100, "b": 100})
    red = lambda r: (r["a"] * 100 + r["b"] * 100) / 200  # noqa: E731
    alloc = allocate(curves, 0.4, red)
    assert alloc["reduction"] >= 0.4
    assert alloc["ratios"]["a"] == pytest.approx(0.8) and alloc["ratios"]["b"] == 0.0
    assert alloc["predicted_loss"] == pytest.approx(0.02)
    with pytest.raises(PruneError, match="unreachable"):
        allocate(curves, 0.95, red)


def test_curves_loss_is_monotone():
    c = SensitivityCurves(baseline=0.9, ratios=[0.1, 0.2, 0.3], accuracy={"a": [0.8, 0.85, 0.7]})
    assert c.loss("a") == pytest.approx([0.1, 0.1, 0.2])
    assert SensitivityCurves.from_dict(c.to_dict()) == c


def test_iterative_prune_flip_counts_restart(mnist_small):
    from onebit.prune import FlipCounter
    from onebit.prune.finetune import iterative_prune

    model = mnist_small()
    counter = FlipCounter(model)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)

    def train(m, steps=3):
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
            counter.update()

    train(model)
    p = Pruner(model, "flip", "channel", target=0.4, flip_counter=counter).prepare()
    steps_seen = []
    history = iterative_prune(p, [0.2, 0.4], lambda m: (steps_seen.append(counter.steps), train(m)))
    assert steps_seen == [0, 0]  # counting restarts after every cut
    assert [h["target"] for h in history] == [0.2, 0.4]
    assert history[0]["reduction"] >= 0.2 and history[1]["reduction"] >= 0.4
    assert history[1]["bops"] < history[0]["bops"]


def test_dp_allocator_beats_greedy_on_a_plateau():
    # layer a: free to 20%, then a drop to a plateau; layer b: linear. With a target needing
    # ratios a + b = 1.7 greedy climbs b first (cheaper per op) and ends at a=0.8, b=0.9
    # (predicted loss 0.75); the optimum is a=0.9, b=0.8 (0.7).
    curves = SensitivityCurves(baseline=0.9, ratios=[0.2, 0.4, 0.6, 0.8, 0.9],
                               accuracy={"a": [0.9, 0.6, 0.6, 0.6, 0.6],
                                         "b": [0.8, 0.7, 0.6, 0.5, 0.45]},
                               layer_bops={"a": 100, "b": 100})
    red = lambda r: (r.get("a", 0.0) * 100 + r.get("b", 0.0) * 100) / 200  # noqa: E731
    greedy = allocate(curves, 0.85, red)
    dp = allocate(curves, 0.85, red, solver="dp")
    assert greedy["reduction"] >= 0.85 - 1e-9 and dp["reduction"] >= 0.85 - 1e-9
    assert greedy["predicted_loss"] == pytest.approx(0.75)
    assert dp["predicted_loss"] == pytest.approx(0.7)
    assert dp["ratios"] == pytest.approx({"a": 0.9, "b": 0.8})
    assert dp["solver"] == "dp"
    with pytest.raises(PruneError, match="solver"):
        allocate(curves, 0.5, red, solver="exhaustive")


def test_dp_allocator_matches_brute_force():
    import itertools

    curves = SensitivityCurves(baseline=0.9, ratios=[0.2, 0.4, 0.6, 0.8],
                               accuracy={"a": [0.9, 0.9, 0.89, 0.88], "b": [0.7, 0.5, 0.3, 0.1],
                                         "c": [0.85, 0.8, 0.6, 0.3]},
                               layer_bops={"a": 100, "b": 50, "c": 250})
    # op counts whose grid reductions are multiples of 1/1000 (exact in the DP's bins)
    w = {"a": 100, "b": 50, "c": 250}
    red = lambda r: sum(r.get(n, 0.0) * w[n] for n in w) / 400  # noqa: E731
    for target in (0.2, 0.4, 0.6):
        dp = allocate(curves, target, red, solver="dp", step=0.1, max_ratio=0.8)
        grid = [round(0.1 * i, 10) for i in range(9)]
        best = min(_pred(curves, combo)
                   for combo in itertools.product(grid, repeat=3)
                   if red(dict(zip("abc", combo))) >= target - 1e-12)
        assert dp["reduction"] >= target - 1e-12
        assert dp["predicted_loss"] == pytest.approx(best, abs=1e-9)


def _pred(curves, combo):
    """Predicted loss of ratios (a, b, c) by linear interpolation of the monotone curves."""
    total = 0.0
    for name, r in zip("abc", combo):
        xs, ys = [0.0] + curves.ratios, [0.0] + curves.loss(name)
        j = max(i for i in range(len(xs)) if xs[i] <= r + 1e-12)
        total += ys[j] if j == len(xs) - 1 else ys[j] + (r - xs[j]) / (xs[j + 1] - xs[j]) * (ys[j + 1] - ys[j])
    return total


@pytest.mark.parametrize("granularity", ["weight", "channel"])
def test_dp_allocator_meets_target_with_channel_coupling(toy, granularity):
    model, curves = _toy_curves(toy, granularity)
    p = Pruner(model, "latent", granularity, target=0.5).prepare()
    greedy = allocate(curves, 0.5, p.reduction_fn())
    dp = allocate(curves, 0.5, p.reduction_fn(), solver="dp")
    assert dp["reduction"] >= 0.5
    assert dp["predicted_loss"] <= greedy["predicted_loss"] + 1e-9
    p.prune(ratios=dp["ratios"])
    assert 1 - count_bops(model).bops / p.base_bops >= 0.5
