import pytest
import torch

import onebit.models
from onebit.train.dataflow import block_data_widths, on_grid


def test_on_grid_accepts_int8_multiples_and_rejects_others():
    s = 4.0 / 127
    q = torch.arange(-127, 128, dtype=torch.float32)
    assert on_grid(q * s, s, 127)
    assert not on_grid(q * s + s / 3, s, 127)
    assert not on_grid(torch.tensor([128 * s]), s, 127)


@pytest.mark.parametrize("clip", [False, True], ids=["noclip", "clip"])
def test_block_data_widths_birealnet_cifar(clip):
    torch.manual_seed(0)
    model = onebit.models.create("birealnet18", width=0.0625, stem="cifar", clip_block=clip)
    rows = block_data_widths(model, torch.randn(4, 3, 32, 32))
    assert [r["stage"] for r in rows][:2] == ["stem", "body.s1b1"] and len(rows) == 17
    assert {r["bits"] for r in rows} == ({8} if clip else {32})
    if clip:
        assert all(r["distinct"] <= 255 for r in rows)


def test_block_data_widths_rejects_plain_network():
    with pytest.raises(ValueError, match="residual"):
        block_data_widths(onebit.models.create("mnist-small"), torch.zeros(1, 1, 28, 28))
