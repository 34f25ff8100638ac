import math

import pytest
import torch

from onebit.train.schedule import WarmupCosine, make_scheduler


def test_schedule_warmup_then_cosine_closed_form():
    f = WarmupCosine(total_steps=110, warmup_steps=10)
    assert [f(t) for t in range(10)] == pytest.approx([(t + 1) / 10 for t in range(10)])
    for t in (10, 35, 60, 85, 109):
        assert f(t) == pytest.approx(0.5 * (1 + math.cos(math.pi * (t - 10) / 100)))
    assert f(10) == pytest.approx(1.0)
    assert f(110) == pytest.approx(0.0)


def test_schedule_without_warmup_starts_at_peak():
    f = WarmupCosine(total_steps=5, warmup_steps=0)
    assert f(0) == 1.0


def test_schedule_rejects_empty_run():
    with pytest.raises(ValueError, match="total_steps"):
        WarmupCosine(0, 0)


def test_scheduler_state_dict_roundtrip():
    def make():
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([p], lr=0.1)
        return opt, make_scheduler(opt, total_steps=20, warmup_fraction=0.1)

    opt, sched = make()
    for _ in range(7):
        opt.step()
        sched.step()
    opt2, sched2 = make()
    sched2.load_state_dict(sched.state_dict())
    assert sched2.last_epoch == 7
    assert sched2.get_last_lr() == sched.get_last_lr()
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()
