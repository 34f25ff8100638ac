"""create(..., input_bits=...): BitPlanes in front of a float first conv over the kept planes."""
import numpy as np
import pytest
import torch

import onebit.models
from onebit.bitplanes import bit_planes
from onebit.nn import BitPlanes


@pytest.mark.parametrize("name,bits,planes", [("mnist-small", 4, 4), ("cifar-binarynet", 8, 24),
                                              ("cifar-binarynet", 2, 6), ("mnist-small", [0, 7], 2)])
def test_input_bits_builds_planes_and_first_conv(name, bits, planes):
    m = onebit.models.create(name, width=0.125, input_bits=bits)
    assert isinstance(m.planes, BitPlanes) and m.planes.out_channels == planes
    assert m.conv0.in_channels == planes
    assert m.onebit_config["input_bits"] == bits
    rebuilt = onebit.models.create(**m.onebit_config)
    rebuilt.load_state_dict(m.state_dict())
    x = torch.randn(2, *m.input_shape)
    assert m.eval()(x).shape == (2, 10)


def test_input_bits_absent_keeps_the_config_unchanged():
    assert "input_bits" not in onebit.models.create("mnist-small", width=0.25).onebit_config


def test_input_bits_planes_match_the_numpy_reference():
    from onebit.data.registry import info

    ds = info("cifar10")
    layer = BitPlanes([0, 5, 7, 8, 16, 23], 3, ds.mean, ds.std)
    u = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    x = (torch.from_numpy(u).permute(0, 3, 1, 2).double() / 255 - torch.tensor(ds.mean).view(1, 3, 1, 1)) \
        / torch.tensor(ds.std).view(1, 3, 1, 1)
    got = layer(x.float()).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(got, bit_planes(u, [0, 5, 7, 8, 16, 23]).astype(np.float32))


def test_input_bits_randomize_replaces_only_the_chosen_planes():
    layer = BitPlanes(8, 1, (0.5,), (0.25,))
    x = torch.randn(3, 1, 6, 6)
    clean = layer(x)
    layer.randomize, layer.generator = {0, 3}, torch.Generator().manual_seed(1)
    noisy = layer(x)
    keep = [i for i in range(8) if i not in (0, 3)]
    assert torch.equal(noisy[:, keep], clean[:, keep])
    assert set(noisy[:, [0, 3]].unique().tolist()) <= {-1.0, 1.0}
    assert not torch.equal(noisy[:, [0, 3]], clean[:, [0, 3]])


@pytest.mark.parametrize("name", ["birealnet18", "quicknet-small"])
def test_input_bits_rejects_models_whose_input_layer_cannot_take_planes(name):
    with pytest.raises(ValueError, match="cannot take input_bits"):
        onebit.models.create(name, width=0.125, input_bits=4, stem="cifar")


@pytest.mark.parametrize("bad", [0, 9, [99], []])
def test_input_bits_rejects_plane_counts_out_of_range(bad):
    with pytest.raises(ValueError):
        onebit.models.create("mnist-small", width=0.25, input_bits=bad)
