"""Quantizers: forward values, sign(0)=+1, closed-form STE gradients, get() resolution."""
import pytest
import torch

from onebit.nn import quantizers as q

X = torch.tensor([-2.0, -1.0, -0.75, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5])


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("name", ["ste_sign", "approx_sign"])
def test_sign_quantizers_forward_never_zero(name):
    y = q.get(name)(X)
    expected = torch.tensor([-1.0, -1, -1, -1, 1, 1, 1, 1, 1])
    assert torch.equal(y, expected)


def test_ste_sign_gradient_is_clipped_identity():
    # d/dx = 1{|x| <= 1}
    expected = torch.tensor([0.0, 1, 1, 1, 1, 1, 1, 1, 0])
    assert torch.equal(_grad(q.ste_sign, X), expected)
    assert torch.equal(_grad(q.SteSign(), X), expected)


def test_ste_sign_clip_value_moves_the_gradient_window():
    expected = torch.tensor([0.0, 0, 0, 1, 1, 1, 1, 0, 0])
    assert torch.equal(_grad(lambda t: q.ste_sign(t, clip_value=0.5), X), expected)


def test_approx_sign_gradient_is_bireal_polynomial():
    # 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere
    expected = torch.tensor([0.0, 0.0, 0.5, 1.5, 2.0, 1.5, 1.0, 0.0, 0.0])
    assert torch.equal(_grad(q.approx_sign, X), expected)
    assert torch.equal(_grad(q.ApproxSign(), X), expected)


def test_identity_passes_values_and_gradient():
    assert torch.equal(q.get("identity")(X), X)
    assert torch.equal(_grad(q.identity, X), torch.ones_like(X))


def test_quantizer_precision_metadata():
    assert q.ste_sign.precision == 1 and q.SteSign.precision == 1
    assert q.approx_sign.precision == 1 and q.ApproxSign.precision == 1
    assert q.identity.precision == 32 and q.Identity.precision == 32
    assert q.precision_of(lambda t: t) == 32


def test_get_resolves_aliases_callables_and_none():
    assert isinstance(q.get("ste_sign"), q.SteSign)
    assert isinstance(q.get("approx_sign"), q.ApproxSign)
    assert isinstance(q.get(None), q.Identity)
    f = q.approx_sign
    assert q.get(f) is f


def test_get_unknown_name_lists_known():
    with pytest.raises(ValueError, match="approx_sign, identity, ste_sign"):
        q.get("sign")
    with pytest.raises(TypeError):
        q.get(3)
