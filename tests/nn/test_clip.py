"""ClipBlock: outputs exactly on the int8 grid, STE gradient mask, PACT gradient, errors."""
import pytest
import torch

from onebit.nn import ClipBlock


@pytest.mark.parametrize("clip", [1.0, 2.5, 0.3])
def test_clipblock_output_exactly_on_int8_grid(clip):
    torch.manual_seed(0)
    cb = ClipBlock(clip)
    x = torch.randn(4096) * clip * 1.5
    y = cb(x)
    s = torch.tensor(clip, dtype=torch.float32) / 127
    q = torch.round(y / s)
    assert float(cb.scale) == float(s)
    assert q.abs().max() <= 127
    assert torch.equal(q * s, y)  # exactly representable as integer * scale
    assert torch.equal(q, torch.clamp(torch.round(x / s), -127, 127))
    assert q.max() == 127 and q.min() == -127  # saturates at the symmetric ends


def test_clipblock_gradient_is_mask_inside_clip():
    cb = ClipBlock(1.0)
    x = torch.tensor([-1.5, -1.0, -0.2, 0.0, 0.7, 1.0, 3.0], requires_grad=True)
    cb(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1, 1, 1, 1, 1, 0]))


def test_clipblock_learnable_pact_gradient_and_scale():
    cb = ClipBlock(2.0, learnable=True)
    assert isinstance(cb.clip, torch.nn.Parameter)
    x = torch.tensor([-3.0, -1.0, 0.5, 2.5, 4.0])
    cb(x).sum().backward()
    # dy/dc = sign(x) outside [-c, c]: -1 + 1 + 1
    assert cb.clip.grad.item() == 1.0
    with torch.no_grad():
        cb.clip.fill_(1.27)
    assert cb.scale == float(torch.tensor(1.27) / 127)
    assert cb.clip_value == pytest.approx(1.27)


def test_clipblock_records_bits_and_rejects_bad_args():
    cb = ClipBlock()
    assert cb.bits == 8 and cb.precision == 8 and cb.qmax == 127
    assert "clip" in dict(cb.named_buffers())  # fixed clip travels in the state_dict
    with pytest.raises(ValueError, match="clip must be > 0"):
        ClipBlock(0.0)
    with pytest.raises(ValueError, match="bits"):
        ClipBlock(1.0, bits=1)
