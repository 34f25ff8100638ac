"""BinaryConv2d / BinaryLinear: oracle equality, signature parity, gradients, mask, warnings."""
import inspect
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from onebit.nn import (
    AccumulatorWidthWarning,
    BinaryConv2d,
    BinaryLinear,
    LatentClipWarning,
    clip_latent_weights,
)


def sign(t):
    return torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t))


CONV_CASES = {
    "k3p1": dict(cin=5, cout=7, k=3, stride=1, padding=1, groups=1),
    "k3s2p1": dict(cin=6, cout=4, k=3, stride=2, padding=1, groups=1),
    "k5p2": dict(cin=3, cout=8, k=5, stride=1, padding=2, groups=1),
    "k1": dict(cin=65, cout=3, k=1, stride=1, padding=0, groups=1),
    "groups2": dict(cin=6, cout=4, k=3, stride=1, padding=1, groups=2),
    "same": dict(cin=4, cout=4, k=3, stride=1, padding="same", groups=1),
    "valid_s3": dict(cin=4, cout=2, k=2, stride=3, padding="valid", groups=1),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=list(CONV_CASES))
def test_binaryconv2d_equals_conv_of_signs(case):
    torch.manual_seed(1)
    layer = BinaryConv2d(
        case["cin"], case["cout"], case["k"], stride=case["stride"], padding=case["padding"],
        groups=case["groups"], bias=False,
    )
    x = torch.randn(2, case["cin"], 9, 11)
    x[0, 0, 0, 0] = 0.0  # sign(0) = +1
    got = layer(x)
    want = F.conv2d(sign(x), sign(layer.weight), stride=case["stride"], padding=case["padding"],
                    groups=case["groups"])
    assert torch.equal(got, want)
    # integer valued, inside [-K, K]
    assert torch.equal(got, got.round())
    assert got.abs().max() <= layer.accumulator_bound


def test_binaryconv2d_padding_is_true_zero():
    # all-(+1) input and weights: a corner output of a 3x3 conv sees 4 in-bounds taps
    layer = BinaryConv2d(2, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.5)
    y = layer(torch.ones(1, 2, 4, 4))
    assert y[0, 0, 0, 0].item() == 4 * 2
    assert y[0, 0, 0, 1].item() == 6 * 2
    assert y[0, 0, 1, 1].item() == 9 * 2


def test_binaryconv2d_bias_is_added():
    torch.manual_seed(2)
    layer = BinaryConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 5, 5)
    want = F.conv2d(sign(x), sign(layer.weight), layer.bias, padding=1)
    assert torch.equal(layer(x), want)


def test_binarylinear_equals_linear_of_signs():
    torch.manual_seed(3)
    layer = BinaryLinear(70, 9, bias=False)
    x = torch.randn(5, 70)
    assert torch.equal(layer(x), F.linear(sign(x), sign(layer.weight)))
    layer_b = BinaryLinear(70, 9)
    assert torch.equal(layer_b(x), F.linear(sign(x), sign(layer_b.weight), layer_b.bias))


def _params(cls):
    return list(inspect.signature(cls.__init__).parameters.values())


@pytest.mark.parametrize("ours,theirs", [(BinaryConv2d, nn.Conv2d), (BinaryLinear, nn.Linear)],
                         ids=["conv2d", "linear"])
def test_binary_layer_signature_parity(ours, theirs):
    mine = _params(ours)
    ref = _params(theirs)
    # every torch argument, same name, kind, default and position
    for a, b in zip(mine, ref):
        assert (a.name, a.kind, a.default) == (b.name, b.kind, b.default)
    extra = {p.name: p for p in mine[len(ref):]}
    assert set(extra) == {"input_quantizer", "weight_quantizer", "clip_latent", "scale"} | (
        {"pad_value", "padding_end"} if ours is BinaryConv2d else set())
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extra.values())
    assert issubclass(ours, theirs)


def test_binaryconv2d_rejects_non_zero_padding_mode():
    with pytest.raises(ValueError, match="padding_mode='zeros'"):
        BinaryConv2d(2, 2, 3, padding=1, padding_mode="reflect")


def test_binary_layer_weight_gradient_is_clipped_ste():
    torch.manual_seed(4)
    with pytest.warns(LatentClipWarning):
        layer = BinaryLinear(4, 1, bias=False, clip_latent=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-1.5, -0.5, 0.5, 1.5]]))
    x = torch.tensor([[1.0, -2.0, 0.3, -0.1]])
    layer(x).sum().backward()
    # y = sum sign(x_i) sign(w_i): dL/dw_i = sign(x_i) * 1{|w_i| <= 1}
    assert torch.equal(layer.weight.grad, torch.tensor([[0.0, -1.0, 1.0, 0.0]]))


def test_binary_layer_input_gradient_closed_form():
    layer = BinaryLinear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.2, -0.3, 0.4], [-0.1, -0.2, 0.9]]))
    x = torch.tensor([[0.5, -1.5, -0.9]], requires_grad=True)
    layer(x).sum().backward()
    # dL/dx_j = sum_o sign(w_oj) * 1{|x_j| <= 1}
    assert torch.equal(x.grad, torch.tensor([[0.0, 0.0, 2.0]]))


def test_weight_mask_makes_weights_zero_and_gradient_zero():
    torch.manual_seed(5)
    layer = BinaryConv2d(4, 3, 3, padding=1, bias=False)
    mask = (torch.rand_like(layer.weight) > 0.5).float()
    layer.set_weight_mask(mask)
    wq = layer.quantized_weight()
    assert torch.equal(wq, sign(layer.weight) * mask)
    assert torch.equal(wq[mask == 0], torch.zeros(int((mask == 0).sum())))
    x = torch.randn(2, 4, 6, 6)
    y = layer(x)
    assert torch.equal(y, F.conv2d(sign(x), sign(layer.weight) * mask, padding=1))
    y.square().sum().backward()
    assert torch.equal(layer.weight.grad[mask == 0], torch.zeros(int((mask == 0).sum())))
    assert layer.weight.grad[mask == 1].abs().sum() > 0


def test_weight_mask_validation_and_state_dict_round_trip():
    layer = BinaryLinear(6, 2)
    with pytest.raises(ValueError, match="shape"):
        layer.set_weight_mask(torch.ones(2, 5))
    with pytest.raises(ValueError, match="only 0 and 1"):
        layer.set_weight_mask(torch.full((2, 6), 0.5))
    mask = torch.tensor([[1.0, 0, 1, 0, 1, 1], [0, 0, 1, 1, 1, 1]])
    layer.set_weight_mask(mask)
    fresh = BinaryLinear(6, 2)
    assert fresh.weight_mask is None
    fresh.load_state_dict(layer.state_dict())  # strict: the mask buffer is adopted
    assert torch.equal(fresh.weight_mask, mask)
    layer.set_weight_mask(None)
    assert "weight_mask" not in layer.state_dict()


def test_channel_scale_is_xnor_mean_abs():
    torch.manual_seed(6)
    layer = BinaryConv2d(3, 2, 3, padding=1, bias=False, scale="channel")
    alpha = layer.weight.abs().mean(dim=(1, 2, 3))
    assert torch.allclose(layer.channel_scale(), alpha)
    x = torch.randn(1, 3, 5, 5)
    want = F.conv2d(sign(x), sign(layer.weight) * alpha.view(-1, 1, 1, 1), padding=1)
    assert torch.allclose(layer(x), want)
    with pytest.raises(ValueError, match="scale"):
        BinaryLinear(2, 2, scale="tensor")


def test_accumulator_bound_and_bits():
    assert BinaryConv2d(64, 8, 3).accumulator_bound == 576
    assert BinaryConv2d(64, 8, 3, groups=4).accumulator_bound == 144
    assert BinaryLinear(3136, 10).accumulator_bits == 16
    assert BinaryLinear(32767, 1).accumulator_bits == 16


def test_accumulator_warning_when_32_bits_forced():
    with pytest.warns(AccumulatorWidthWarning, match="K=32768"):
        layer = BinaryLinear(32768, 1)
    assert layer.accumulator_bits == 32
    with pytest.warns(AccumulatorWidthWarning):
        BinaryConv2d(4096, 1, 3)  # K = 36864
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BinaryConv2d(3640, 1, 3)  # K = 32760: no warning


def test_latent_clip_warning_and_clipping():
    with pytest.warns(LatentClipWarning, match="clip_latent=False"):
        BinaryLinear(4, 2, clip_latent=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BinaryLinear(4, 2, weight_quantizer="identity", clip_latent=False)  # not binary weights
    model = nn.Sequential(BinaryConv2d(2, 2, 3), nn.Conv2d(2, 2, 1), BinaryLinear(4, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0).add_(5.0)
    assert clip_latent_weights(model) == 2
    assert model[0].weight.max() == 1.0 and model[2].weight.max() == 1.0
    assert model[1].weight.max() == 5.0  # float layers untouched


def test_forward_clamps_latent_weights_for_float_weight_quantizer():
    layer = BinaryLinear(2, 1, bias=False, weight_quantizer="identity")
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, -0.5]]))
    assert torch.equal(layer(torch.tensor([[1.0, -1.0]])), torch.tensor([[1.5]]))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(
    groups=st.integers(1, 3), cin_g=st.integers(1, 5), cout_g=st.integers(1, 4),
    k=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2),
    h=st.integers(4, 9), w=st.integers(4, 9), seed=st.integers(0, 2**16),
)
def test_binaryconv2d_oracle_property(groups, cin_g, cout_g, k, stride, padding, h, w, seed):
    torch.manual_seed(seed)
    layer = BinaryConv2d(cin_g * groups, cout_g * groups, k, stride=stride, padding=padding,
                         groups=groups, bias=False)
    x = torch.randn(1, cin_g * groups, h, w)
    want = F.conv2d(sign(x), sign(layer.weight), stride=stride, padding=padding, groups=groups)
    assert torch.equal(layer(x), want)
