"""The classic op order producer -> max pool -> BatchNorm (BinaryNet, XNOR-Net, BinaryAlexNet):
the BN folds after the pool; per channel a positive BN scale keeps the max pool of the bits (AND),
a negative one makes it a minimum pool (OR), stored negated and undone by the next binary layer's
weights. Integer simulation == float model (exact models) and engine == simulation on every ISA,
with both directions present."""
import numpy as np
import pytest
import torch
from torch import nn

import onebit.convert as cv
from onebit.convert import ConversionError
from onebit.convert.compare import engine_vs_simulation
from onebit.models import randomize_bn
from onebit.nn import BinaryConv2d, BinaryLinear
from onebit.runtime import Session
from onebit.runtime import format as fmt

from tiny_models import RAW_SPEC, assert_simulation_equals_float


def _mixed_signs(bn: nn.BatchNorm2d, seed: int):
    """Gammas of both signs (about half negative) so that both pool directions occur."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sign = torch.where(torch.rand(bn.num_features, generator=g) < 0.5, -1.0, 1.0)
        bn.weight.copy_(bn.weight.abs().clamp_min(0.2) * sign)


def pool_bn_model(seed=0, act="hardtanh", head="binary"):
    """conv -> [BN -> act] -> pool -> BN -> bconv -> pool -> BN -> flatten -> (binary dense -> BN ->
    Linear | Linear): the first pool+BN feeds a binary conv, the second a binary dense (``head``
    "binary"; or a float Linear, then that BN must keep the max: positive scales)."""
    torch.manual_seed(seed)
    pre = {"hardtanh": [nn.BatchNorm2d(9), nn.Hardtanh()], "relu": [nn.BatchNorm2d(9), nn.ReLU()], "none": []}[act]
    layers = [nn.Conv2d(2, 9, 3, padding=1), *pre, nn.MaxPool2d(2), nn.BatchNorm2d(9), nn.Hardtanh(),
              BinaryConv2d(9, 70, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(70), nn.Flatten()]
    layers += ([BinaryLinear(70 * 9, 20), nn.BatchNorm1d(20), nn.Linear(20, 7)] if head == "binary"
               else [nn.Linear(70 * 9, 7)])
    m = nn.Sequential(*layers)
    with torch.no_grad():
        m[0].weight.copy_(torch.randint(-1, 2, m[0].weight.shape).float())
        m[0].weight[:, 0, 0, 0] = 1.0  # exact int8 first layer on RAW_SPEC
        m[0].bias.uniform_(-20, 20)
    randomize_bn(m, seed, input_shape=(2, 12, 12))
    bns = [mod for mod in m if isinstance(mod, nn.BatchNorm2d)]
    post = [bns[-2], bns[-1]]  # the BNs after the pools
    _mixed_signs(post[0], seed)
    if head == "binary":
        _mixed_signs(post[1], seed + 1)
    else:
        with torch.no_grad():
            post[1].weight.abs_()
    return m.eval(), post


@pytest.mark.parametrize("act", ["hardtanh", "relu", "none"])
def test_pool_bn_equals_float_and_engine(act, isa):
    m, post = pool_bn_model(4, act)
    for bn in post:
        assert (bn.weight < 0).any() and (bn.weight > 0).any()  # both directions
    data = cv.to_bytes(m, input_spec=RAW_SPEC)
    sim = cv.simulate(fmt.loads(data))
    assert_simulation_equals_float(sim, m, 64)
    sess = Session(data, isa=isa, threads=2)
    u = np.random.default_rng(5).integers(0, 256, (6, 12, 12, 2), dtype=np.uint8)
    assert set(engine_vs_simulation(sess, sim, u)) == set(sess.model.values) - {"input"}


def test_pool_bn_order_matters_on_these_models():
    # the same BN before the pool gives other outputs: the test above checks the order
    m, _ = pool_bn_model(4, "none")
    swapped = nn.Sequential(m[0], m[2], m[1], *list(m)[3:]).eval()
    u = torch.randint(0, 256, (64, 2, 12, 12), generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():
        assert not torch.equal(m(u).argmax(1), swapped(u).argmax(1))


def test_pool_bn_positive_scale_feeds_a_float_head(isa):
    m, _ = pool_bn_model(2, "hardtanh", head="float")
    data = cv.to_bytes(m, input_spec=RAW_SPEC)
    sim = cv.simulate(fmt.loads(data))
    assert_simulation_equals_float(sim, m, 32)
    u = np.random.default_rng(1).integers(0, 256, (3, 12, 12, 2), dtype=np.uint8)
    engine_vs_simulation(Session(data, isa=isa, threads=1), sim, u)


def test_pool_bn_negative_scale_feeds_a_float_head(isa):
    """A BN with a negative scale after the pool does not commute with it: before a float layer
    the pool runs on the binary conv's float stage and the BN is its own ``affine_f32`` op."""
    m, post = pool_bn_model(2, "hardtanh", head="float")
    with torch.no_grad():
        post[1].weight[3] = -1.0
    data = cv.to_bytes(m, input_spec=RAW_SPEC)
    assert [op.type for op in fmt.loads(data).ops].count("affine_f32") == 1
    sim = cv.simulate(fmt.loads(data))
    assert_simulation_equals_float(sim, m, 32)
    u = np.random.default_rng(1).integers(0, 256, (3, 12, 12, 2), dtype=np.uint8)
    assert max(engine_vs_simulation(Session(data, isa=isa, threads=1), sim, u).values()) == 0.0


def test_pool_bn_errors():
    from onebit.nn import ClipBlock

    m, post = pool_bn_model(2, "hardtanh", head="float")
    with torch.no_grad():
        post[1].weight[3] = -1.0
    clipped = nn.Sequential(*list(m)[:-2], ClipBlock(2.0), *list(m)[-2:]).eval()
    with pytest.raises(ConversionError, match=r"channels \[3\] have a negative BatchNorm scale"):
        cv.to_bytes(clipped, input_spec=RAW_SPEC)
    # a one-padded binary conv cannot read negated channels
    m, _ = pool_bn_model(3)
    m[6].pad_value = 1
    with pytest.raises(ConversionError, match="one-padding cannot follow"):
        cv.to_bytes(m, input_spec=RAW_SPEC)
    # anything but a binary layer after a minimum pool
    bad = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(4),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 3))
    with pytest.raises(ConversionError, match="second pool"):
        cv.to_bytes(bad.eval(), input_spec=RAW_SPEC)


@pytest.mark.parametrize("act", ["hardtanh", "relu", "none"])
def test_pool_bn_float_boundary_first_layer(act, isa):
    # the float32 first layer (conv2d_f32) -> [act] -> pool, then the BN after the pool in float32
    # (affine_f32, either sign of scale) before the sign reads it: BinaryAlexNet's and XNOR-Net's
    # stems with --float-boundary
    m, post = pool_bn_model(5, act)
    assert (post[0].weight < 0).any() and (post[0].weight > 0).any()
    data = cv.to_bytes(m, input_spec=RAW_SPEC, float_boundary=True)
    mf = fmt.loads(data)
    types = [op.type for op in mf.ops]
    assert types[0] == "conv2d_f32" and types[types.index("maxpool2d") + 1] == "affine_f32"
    sim = cv.simulate(mf)
    u = torch.randint(0, 256, (16, 12, 12, 2), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    _, env = sim(u, return_values=True)
    bn = next(op for op in mf.ops if op.type == "affine_f32")
    with torch.no_grad():
        want = m[:list(m).index(post[0]) + 1](u.permute(0, 3, 1, 2).float())  # up to the BN after the pool
    assert (env[bn.output] - want).abs().max() <= 1e-5 * want.abs().max()
    assert_simulation_equals_float(sim, m, 32)
    sess = Session(data, isa=isa, threads=2)
    assert set(engine_vs_simulation(sess, sim, u.numpy()[:4])) == set(mf.values) - {"input"}
