import pytest
import torch

from onebit.nn import BinaryLinear
from onebit.prune import FlipCounter, Pruner, get_mask
from onebit.prune.scores import flip_score


class One(torch.nn.Module):
    def __init__(self, n_out=1, n_in=4):
        super().__init__()
        self.fc = BinaryLinear(n_in, n_out, bias=False)
        self.input_shape = (n_in, 1, 1)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _set(model, values):
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor(values, dtype=torch.float32))


def test_flip_counter_hand_trajectory():
    model = One()
    # sign(0) = +1: 0.0 -> 0.3 is no flip, 0.0 -> -0.1 is one.
    trajectory = [
        [[0.5, -0.5, 0.0, 0.0]],
        [[-0.1, -0.4, 0.3, -0.1]],  # flips: w0, w3
        [[0.2, -0.3, 0.0, 0.1]],    # flips: w0, w3
        [[0.2, 0.1, -0.2, 0.1]],    # flips: w1, w2
        [[-0.7, 0.1, -0.2, -0.0]],  # flips: w0 (-0.0 has sign +1: no flip for w3)
    ]
    _set(model, trajectory[0])
    counter = FlipCounter(model)
    for step in trajectory[1:]:
        _set(model, step)
        counter.update()
    assert counter.steps == 4
    assert counter.counts["fc"].tolist() == [[3, 1, 1, 2]]
    assert counter.insensitive("fc", threshold=1).tolist() == [[True, False, False, True]]
    assert counter.insensitive_fraction(threshold=1) == {"fc": 0.5}
    state = counter.state_dict()
    counter.reset()
    assert counter.counts["fc"].sum() == 0 and counter.steps == 0
    counter.load_state_dict(state)
    assert counter.counts["fc"].tolist() == [[3, 1, 1, 2]]


def test_flip_counter_attaches_to_optimizer():
    torch.manual_seed(0)
    model = One(3, 8)
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    counter = FlipCounter(model)
    counter.attach(opt)
    for _ in range(4):
        opt.zero_grad()
        model(torch.randn(5, 8, 1, 1)).pow(2).sum().backward()
        opt.step()
    assert counter.steps == 4
    counter.detach()
    opt.step()
    assert counter.steps == 4


def test_flip_channel_score_prunes_most_insensitive_filter():
    model = One(n_out=3, n_in=4)
    _set(model, [[0.5] * 4, [0.5] * 4, [0.5] * 4])
    counter = FlipCounter(model)
    counter.counts["fc"] = torch.tensor([[0, 0, 0, 0], [2, 3, 0, 1], [0, 5, 0, 0]], dtype=torch.int32)
    counter.steps = 10
    # filter 1 has 3/4 insensitive weights (flipped > 0 times), filter 2 has 1/4, filter 0 none
    s = flip_score(model.fc.weight, counter.counts["fc"], threshold=0)
    assert s[1].mean() < s[2].mean() < s[0].mean()
    p = Pruner(model, "flip", "weight", ratios={"fc": 1 / 3}, flip_counter=counter, input_size=(4, 1, 1))
    # channel granularity needs a consumer; on the weight level the 4 flippiest weights go first
    p.prepare().prune()
    pruned = (get_mask(model.fc) == 0)
    assert pruned.sum() == 4
    assert pruned[1, :2].all() and pruned[2, 1] and pruned[1, 3]


def test_flip_allocation_follows_insensitive_fractions(toy):
    model = toy()
    counter = FlipCounter(model)
    g = torch.Generator().manual_seed(0)
    fractions = {"conv1": 0.6, "conv2": 0.3, "fc1": 0.0}
    for name, f in fractions.items():
        c = counter.counts[name]
        counter.counts[name] = (torch.rand(c.shape, generator=g) < f).to(torch.int32) * 3
    counter.steps = 5
    p = Pruner(model, "flip", "weight", target=0.3, flip_counter=counter).prepare()
    assert p.allocation == "flip"
    rep = p.prune()
    assert rep["reduction"] >= 0.3
    r = p.achieved
    assert r["conv1"] > r["conv2"] > 0 and r["fc1"] == 0.0
    assert r["conv1"] / r["conv2"] == pytest.approx(2.0, rel=0.05)
    # conv1 + conv2 capped at 92% remove 91.6% of the ops: 91.8% needs the uniform floor to
    # reach fc1, which has no insensitive weights
    q = Pruner(toy(), "flip", "weight", target=0.918, max_ratio=0.92, flip_counter=counter).prepare()
    assert q.prune()["reduction"] >= 0.918 and q.achieved["fc1"] > 0.4


def test_flip_order_rare_reverses_the_ranking():
    model = One(n_out=3, n_in=4)
    _set(model, [[0.5, 0.4, 0.3, 0.2], [0.5] * 4, [0.5] * 4])
    counts = torch.tensor([[0, 0, 0, 0], [2, 3, 0, 1], [0, 5, 0, 0]], dtype=torch.int32)
    freq = flip_score(model.fc.weight, counts, order="frequent")
    rare = flip_score(model.fc.weight, counts, order="rare")
    # per filter: 'frequent' keeps the filter with no flips, 'rare' keeps the flippiest one
    assert freq[1].mean() < freq[2].mean() < freq[0].mean()
    assert rare[0].mean() < rare[2].mean() < rare[1].mean()
    # per weight: 'rare' prunes non-flipping weights first, smaller |w| first among them
    order = torch.argsort(rare.flatten()).tolist()
    assert order[:4] == [3, 2, 1, 0]
    assert set(order[-4:]) == {4, 5, 7, 9}
    assert order[-1] == 9  # 5 flips: the most-flipped weight is kept longest
    with pytest.raises(Exception, match="flip order"):
        flip_score(model.fc.weight, counts, order="often")


def test_pruner_flip_order_rare_prunes_the_stable_filter():
    model = One(n_out=3, n_in=4)
    _set(model, [[0.5] * 4, [0.5] * 4, [0.5] * 4])
    counter = FlipCounter(model)
    counter.counts["fc"] = torch.tensor([[0, 0, 0, 0], [2, 3, 0, 1], [0, 5, 0, 0]], dtype=torch.int32)
    counter.steps = 10
    masks = {}
    for order in ("frequent", "rare"):
        m = One(n_out=3, n_in=4)
        _set(m, [[0.5] * 4, [0.5] * 4, [0.5] * 4])
        fc = FlipCounter(m)
        fc.load_state_dict(counter.state_dict())
        p = Pruner(m, "flip", "weight", ratios={"fc": 4 / 12}, flip_counter=fc, flip_order=order,
                   input_size=(4, 1, 1)).prepare()
        p.prune()
        assert p.state_dict()["config"]["flip_order"] == order
        masks[order] = get_mask(m.fc) == 0
    assert masks["frequent"].sum() == masks["rare"].sum() == 4
    assert masks["rare"][0].all()  # the filter that never flipped goes first
    assert not masks["frequent"][0].any()
    with pytest.raises(Exception, match="flip order"):
        Pruner(One(), "flip", "weight", target=0.5, flip_order="seldom")
