"""Channel pruning with kept channel counts in multiples (``Pruner(channel_multiple=m)``): the
rounding rule, every allocation and the gradual schedule, the target, errors, state_dict, the
full-size cifar-binarynet plan (counting only) and export + engine == simulation."""
import copy

import numpy as np
import pytest
import torch

from onebit.prune import FlipCounter, PruneError, Pruner, SensitivityCurves, allocate, count_bops
from onebit.prune.allocation import Allocator
from onebit.prune.granularity import aligned_count
from onebit.prune.layers import get_mask


def _kept(p: Pruner) -> dict[str, int]:
    """Output channels of each prunable layer whose filter is not fully pruned."""
    return {n: int(get_mask(m).flatten(1).any(dim=1).sum()) for n, m in p.layers.items()}


def _assert_aligned(p: Pruner, m: int):
    for name, k in _kept(p).items():
        n = p.layers[name].weight.shape[0]
        assert k == n or (k % m == 0 and k >= m), (name, k, n)


def test_aligned_count_rule():
    assert aligned_count(24, 17, 8) == 16
    assert aligned_count(24, 22, 8) == 24
    assert aligned_count(16, 12, 8) == 16  # tie: keep more
    assert aligned_count(512, 381, 64) == 384
    assert aligned_count(128, 95, 64) == 64
    assert aligned_count(128, 96, 64) == 128  # tie
    assert aligned_count(128, 3, 64) == 64  # never fewer than one multiple
    assert aligned_count(64, 10, 64) == 64 and aligned_count(40, 10, 64) == 40  # too small: unpruned
    assert aligned_count(100, 90, 64) == 100 and aligned_count(100, 70, 64) == 64  # n itself allowed
    assert aligned_count(128, 64, 64, lo=77) == 128  # max_ratio leaves no multiple below 128
    assert aligned_count(256, 60, 64, lo=100) == 128
    assert aligned_count(256, 250, 64, hi=200) == 192  # channels already pruned stay pruned
    assert aligned_count(256, 250, 64, hi=50) == 50  # nothing aligned fits: keep what is alive


def test_explicit_ratios_round_to_nearest_multiple(toy):
    # conv1 24 ch: ratio 0.3 -> keep 24-7=17 -> 16; conv2 16 ch: 0.25 -> keep 12 -> tie -> 16;
    # fc1 20 ch: 0.5 -> keep 10 -> 8
    p = Pruner(toy(), "latent", "channel", ratios={"conv1": 0.3, "conv2": 0.25, "fc1": 0.5},
               channel_multiple=8).prepare()
    rep = p.prune()
    assert _kept(p) == {"conv1": 16, "conv2": 16, "fc1": 8}
    assert p.achieved == {"conv1": pytest.approx(1 / 3), "conv2": 0.0, "fc1": pytest.approx(0.6)}
    # the exact count (channel coupling: conv2 lost the inputs of conv1's pruned filters)
    assert rep["bops"] == 64 * 16 * 70 * 9 + 64 * 16 * 16 * 9 + 8 * 256
    assert p.reduction({"conv1": 0.3, "conv2": 0.25, "fc1": 0.5}) == pytest.approx(rep["reduction"])
    # without the multiple the same ratios keep 17 / 12 / 10
    q = Pruner(toy(), "latent", "channel", ratios={"conv1": 0.3, "conv2": 0.25, "fc1": 0.5}).prepare()
    q.prune()
    assert _kept(q) == {"conv1": 17, "conv2": 12, "fc1": 10}


def _flip_counter(model, seed=0):
    counter = FlipCounter(model)
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        with torch.no_grad():
            for name in counter.counts:
                w = model.get_submodule(name).weight
                flip = torch.rand(w.shape, generator=g) < torch.rand(1, generator=g)
                w[flip] = -w[flip]
        counter.update()
    return counter


@pytest.mark.parametrize("allocation", ["uniform", "global", "flip"])
@pytest.mark.parametrize("target", [0.2, 0.4, 0.6])
def test_target_met_with_aligned_counts(toy, allocation, target, monkeypatch):
    model = toy()
    method = "flip" if allocation == "flip" else "latent"
    fc = _flip_counter(model) if method == "flip" else None
    p = Pruner(model, method, "channel", target, allocation=allocation, flip_counter=fc,
               channel_multiple=8).prepare()
    rep = p.prune()
    _assert_aligned(p, 8)
    assert rep["bops"] <= (1 - target) * rep["base_bops"]
    assert rep["bops"] == count_bops(model).bops
    # the give-back never loses the target and only lowers the overshoot of the bisected plan,
    # by at most one multiple per layer
    monkeypatch.setattr(Allocator, "give_back", lambda self, ratios, t, orders: ratios)
    model2 = toy()
    fc2 = _flip_counter(model2) if method == "flip" else None
    q = Pruner(model2, method, "channel", target, allocation=allocation, flip_counter=fc2,
               channel_multiple=8).prepare()
    plain = q.prune()
    _assert_aligned(q, 8)
    assert rep["base_bops"] * (1 - target) >= rep["bops"] >= plain["bops"]
    kp, kq = _kept(p), _kept(q)
    assert all(kq[n] <= kp[n] <= kq[n] + 8 for n in kp)


def test_give_back_lowers_overshoot(toy):
    # uniform at 15%: the first rounded plan on the bisection path prunes conv1 24 -> 16
    # (33% of its ops); the give-back can keep conv1's 8 channels only where the target holds
    p = Pruner(toy(), "latent", "channel", 0.15, channel_multiple=8).prepare()
    rep = p.prune()
    base = rep["base_bops"]
    # brute force over all aligned plans: the least reduction >= 15%
    best = None
    for c1 in (8, 16, 24):
        for c2 in (8, 16):
            for f in (8, 16, 20):
                bops = 64 * c1 * 70 * 9 + 64 * c2 * c1 * 9 + f * (c2 * 16)
                if bops <= 0.85 * base and (best is None or bops > best):
                    best = bops
    assert rep["bops"] == best


def test_gradual_schedule_stays_aligned_and_masks_only_grow(toy):
    model = toy()
    p = Pruner(model, "latent", "channel", 0.5, schedule="gradual", begin_step=0, end_step=8,
               frequency=2, channel_multiple=8).prepare()
    prev = {n: get_mask(m).clone() for n, m in p.layers.items()}
    pruned_steps = 0
    for _ in range(8):
        with torch.no_grad():  # the latents move between steps (as training would)
            for m in p.layers.values():
                m.weight.add_(torch.randn_like(m.weight) * 0.1)
        if p.step():
            pruned_steps += 1
            _assert_aligned(p, 8)
            for n, m in p.layers.items():
                assert bool((get_mask(m) <= prev[n]).all()), n  # nothing comes back
                prev[n] = get_mask(m).clone()
    assert pruned_steps >= 2
    assert p.report()["reduction"] >= 0.5


def test_sensitivity_allocation_with_multiple(toy):
    p = Pruner(toy(), "latent", "channel", 0.4, channel_multiple=8).prepare()
    names = list(p.layers)
    curves = SensitivityCurves(baseline=0.9, ratios=[0.2, 0.4, 0.6, 0.8],
                               accuracy={n: [0.9 - 0.01 * i * (j + 1) for j in range(4)]
                                         for i, n in enumerate(names)})
    alloc = allocate(curves, 0.4, p.reduction_fn(), max_ratio=0.9)
    rep = p.prune(ratios=alloc["ratios"])
    _assert_aligned(p, 8)
    assert rep["reduction"] == pytest.approx(alloc["reduction"])
    assert rep["reduction"] >= 0.4


def test_max_ratio_and_small_layers(toy):
    # max_ratio 0.5: conv1 (24) keeps >= 12 -> 16; conv2 (16) keeps >= 8 -> 8; fc1 (20) keeps
    # >= 10 -> 16 (8 would prune 60%)
    p = Pruner(toy(), "latent", "channel", ratios={"conv1": 0.5, "conv2": 0.5, "fc1": 0.5},
               max_ratio=0.5, channel_multiple=8).prepare()
    p.prune()
    assert _kept(p) == {"conv1": 16, "conv2": 8, "fc1": 16}
    # every layer has <= 32 channels: nothing can be pruned at a multiple of 32
    p = Pruner(toy(), "latent", "channel", 0.3, channel_multiple=32).prepare()
    with pytest.raises(PruneError, match="unreachable.*channel_multiple 32"):
        p.prune()
    p = Pruner(toy(), "latent", "channel", ratios={"conv1": 0.9}, channel_multiple=32).prepare()
    assert p.prune()["bops"] == p.base_bops  # left unpruned, explicitly


@pytest.mark.parametrize("kwargs, match", [
    ({"granularity": "weight", "channel_multiple": 64}, "needs granularity 'channel'"),
    ({"granularity": "word", "channel_multiple": 2}, "needs granularity 'channel'"),
    ({"granularity": "channel", "channel_multiple": 0}, "integer >= 1"),
    ({"granularity": "channel", "channel_multiple": -64}, "integer >= 1"),
    ({"granularity": "channel", "channel_multiple": 1.5}, "integer >= 1"),
    ({"granularity": "channel", "channel_multiple": True}, "integer >= 1"),
])
def test_bad_channel_multiple(toy, kwargs, match):
    with pytest.raises(PruneError, match=match):
        Pruner(toy(), "latent", target=0.4, **kwargs)


def test_channel_multiple_one_is_plain_channel_pruning(toy):
    a = Pruner(toy(), "latent", "channel", 0.4, channel_multiple=1).prepare()
    b = Pruner(toy(), "latent", "channel", 0.4).prepare()
    assert a.prune()["bops"] == b.prune()["bops"]
    Pruner(toy(), "latent", "weight", 0.4, channel_multiple=1)  # allowed for every granularity


def test_state_dict_round_trip(toy):
    p = Pruner(toy(), "latent", "channel", 0.4, channel_multiple=8).prepare()
    p.prune()
    state = p.state_dict()
    assert state["config"]["channel_multiple"] == 8
    q = Pruner(toy(), "latent", "channel", 0.4, channel_multiple=8).prepare()
    q.load_state_dict(copy.deepcopy(state))
    assert _kept(q) == _kept(p)
    for n in p.layers:
        assert torch.equal(get_mask(q.layers[n]), get_mask(p.layers[n]))
    with pytest.raises(PruneError, match="channel_multiple=8"):
        Pruner(toy(), "latent", "channel", 0.4).prepare().load_state_dict(copy.deepcopy(state))
    old = copy.deepcopy(state)
    del old["config"]["channel_multiple"]  # states saved before the option: multiple 1
    Pruner(toy(), "latent", "channel", 0.4).prepare().load_state_dict(old)
    kept = {n: k for n, k in _kept(p).items() if k < p.layers[n].weight.shape[0]}
    p.finalize()
    assert p.prune_info["channel_multiple"] == 8
    assert {n: len(k) for n, k in p.prune_info["channels"].items()} == kept


@pytest.mark.parametrize("target", [0.4])
def test_cifar_binarynet_width1_counts_are_multiples_of_64(target):
    """Full-size cifar-binarynet, random latents, counting only: kept counts are multiples of 64
    and the exact count (by hand from the kept counts) meets the target."""
    import onebit.models as om

    torch.manual_seed(0)
    model = om.create("cifar-binarynet", width=1)
    p = Pruner(model, "latent", "channel", target, channel_multiple=64).prepare()
    rep = p.prune()
    kept = _kept(p)
    _assert_aligned(p, 64)
    assert any(k < p.layers[n].weight.shape[0] for n, k in kept.items())
    # hand count: conv i sees conv i-1's kept channels (conv1 sees the float conv0's 128),
    # fc1 sees conv5's kept channels x 4x4 positions, fc2 fc1's
    pos = {"conv1": 32 * 32, "conv2": 16 * 16, "conv3": 16 * 16, "conv4": 8 * 8, "conv5": 8 * 8}
    cin = {"conv1": 128, "conv2": kept["conv1"], "conv3": kept["conv2"], "conv4": kept["conv3"],
           "conv5": kept["conv4"]}
    bops = sum(pos[n] * kept[n] * cin[n] * 9 for n in pos)
    bops += kept["fc1"] * kept["conv5"] * 16 + kept["fc2"] * kept["fc1"]
    assert rep["bops"] == bops
    assert bops <= (1 - target) * rep["base_bops"]
    assert rep["reduction"] < target + 0.02  # the give-back keeps the overshoot small here


def test_aligned_channel_pruned_export_engine_equals_simulation(tmp_path):
    """tiny_model (binary convs 16 and 70 channels, dense 32) pruned at multiples of 16, shrunk,
    exported: the engine equals the integer simulation on every ISA."""
    import onebit.convert as cv
    from onebit.convert.compare import engine_vs_simulation
    from tiny_models import MNIST_SPEC, tiny_model
    from onebit.runtime import Session, capabilities

    m = tiny_model(3)
    p = Pruner(m, "latent", "channel", 0.4, input_size=(1, 28, 28), channel_multiple=16).prepare()
    p.prune()
    kept = _kept(p)
    _assert_aligned(p, 16)
    m = p.finalize().eval()
    assert [m[i].weight.shape[0] for i in (3, 7, 11)] == [kept["3"], kept["7"], kept["11"]]
    path = cv.export(m, tmp_path / "m16.onebit", input_spec=MNIST_SPEC)
    sim = cv.simulate(path)
    u = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    for isa in capabilities()["supported"]:
        engine_vs_simulation(Session(path, isa=isa, threads=1), sim, u)


def test_sensitivity_sweep_evaluates_the_rounded_plans(toy):
    """sweep(channel_multiple=8) evaluates each layer at the aligned plan its ratio rounds to (the
    plan a channel_multiple pruner applies for that ratio); then allocate + prune, as onebit
    prune --sensitivity does, meets the target with aligned counts."""
    from onebit.prune import sweep

    model = toy().eval()
    x = torch.randn(32, 1, 8, 8)
    with torch.no_grad():
        ref = model(x).argmax(1)
    seen = []

    def evaluate(m):
        kept = {n: int(get_mask(m.get_submodule(n)).flatten(1).any(dim=1).sum()) for n in ("conv1", "conv2", "fc1")}
        seen.append(kept)
        with torch.no_grad():
            return float((m(x).argmax(1) == ref).float().mean())

    curves = sweep(model, evaluate, granularity="channel", ratios=(0.2, 0.5), channel_multiple=8)
    assert curves.channel_multiple == 8
    assert SensitivityCurves.from_dict(curves.to_dict()) == curves
    # points in order conv1@0.2, conv1@0.5, conv2@0.2, ...; 24 ch: keep 19 -> 16, keep 12 -> 16 (tie);
    # 16 ch: keep 13 -> 16 (unpruned), keep 8 -> 8; 20 ch: keep 16 -> 16, keep 10 -> 8
    assert seen[1:] == [
        {"conv1": 16, "conv2": 16, "fc1": 20}, {"conv1": 16, "conv2": 16, "fc1": 20},
        {"conv1": 24, "conv2": 16, "fc1": 20}, {"conv1": 24, "conv2": 8, "fc1": 20},
        {"conv1": 24, "conv2": 16, "fc1": 16}, {"conv1": 24, "conv2": 16, "fc1": 8}]
    assert curves.accuracy["conv2"][0] == 1.0  # rounded to no pruning at all
    p = Pruner(model, "latent", "channel", 0.3, channel_multiple=8).prepare()
    alloc = allocate(curves, 0.3, p.reduction_fn(), max_ratio=0.9)
    rep = p.prune(ratios=alloc["ratios"])
    _assert_aligned(p, 8)
    assert rep["reduction"] >= 0.3
