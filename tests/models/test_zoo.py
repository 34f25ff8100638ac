"""Model zoo: every model builds and runs (binary, float twin, BNN-Clip), config round trip,
conversion-friendly layer order, registry errors."""
import warnings

import pytest
import torch
from torch import nn

import onebit.models as zoo
from onebit.nn import BinaryConv2d, BinaryLinear, ClipBlock, is_binary_layer

ALL = ["birealnet18", "cifar-alexnet", "cifar-binarynet", "cifar-nin", "imagenette-small",
       "mnist-small", "quicknet-small"]
# small and fast: tiny widths, CIFAR-size inputs for the residual networks
FAST = {"birealnet18": dict(stem="cifar", input_size=16),
        "quicknet-small": dict(stem="cifar", input_size=16)}


def test_list_models_names_the_reference_networks():
    assert zoo.list_models() == ALL


@pytest.mark.parametrize("variant", ["binary", "twin", "clip"])
@pytest.mark.parametrize("name", ALL)
def test_model_builds_and_runs_forward(name, variant):
    torch.manual_seed(0)
    kw = dict(FAST.get(name, {}), width=0.125, num_classes=7,
              float_twin=variant == "twin", clip_block=variant == "clip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no accumulator / clipping warnings from the zoo
        model = zoo.create(name, **kw)
    x = torch.randn(2, *model.input_shape)
    y = model(x)
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()
    y.sum().backward()  # trainable end to end
    binary = [m for m in model.modules() if is_binary_layer(m)]
    if variant == "twin":
        assert binary == []
    else:
        assert len(binary) >= 3
        assert all(m.weight.grad is not None for m in binary)
    clips = [m for m in model.modules() if isinstance(m, ClipBlock)]
    assert bool(clips) == (variant == "clip")


@pytest.mark.parametrize("name", ALL)
def test_model_config_rebuilds_same_architecture(name):
    model = zoo.create(name, width=0.125, clip_block=True, **FAST.get(name, {}))
    cfg = dict(model.onebit_config)
    assert cfg["name"] == name
    assert set(cfg) == {"name", "width", "num_classes", "clip_block", "float_twin", "input_size",
                        "stem"}
    again = zoo.create(**cfg)
    a = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in again.state_dict().items()}
    assert a == b
    again.load_state_dict(model.state_dict())
    assert model.dataset_hint in {"mnist", "cifar10", "imagenette"}


def _flat(model):
    return [m for m in model.modules() if not list(m.children()) or is_binary_layer(m)]


@pytest.mark.parametrize("name", ["mnist-small", "cifar-binarynet", "cifar-alexnet", "cifar-nin",
                                  "imagenette-small"])
@pytest.mark.parametrize("clip_block", [False, True], ids=["plain", "clip"])
def test_plain_models_follow_conversion_friendly_order(name, clip_block):
    model = zoo.create(name, width=0.125, clip_block=clip_block)
    mods = [m for m in model.children()]
    assert isinstance(model, nn.Sequential)
    assert type(mods[0]) is nn.Conv2d and isinstance(mods[1], nn.BatchNorm2d)
    assert type(mods[-1]) is nn.Linear
    for i, m in enumerate(mods):
        if is_binary_layer(m):
            assert isinstance(mods[i + 1], (nn.BatchNorm2d, nn.BatchNorm1d)), (name, i)
            assert m.bias is None
        if isinstance(m, nn.MaxPool2d):
            assert isinstance(mods[i - 1], nn.BatchNorm2d), (name, i)
        assert not isinstance(m, nn.ReLU)
    if clip_block:
        assert isinstance(mods[-2], ClipBlock) or isinstance(mods[-4], ClipBlock)


def test_float_twin_keeps_layer_names_and_shapes():
    binary = zoo.create("cifar-binarynet", width=0.125)
    twin = zoo.create("cifar-binarynet", width=0.125, float_twin=True)
    sb = {k: tuple(v.shape) for k, v in binary.state_dict().items()}
    st = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert sb == st
    assert isinstance(binary.conv1, BinaryConv2d) and type(twin.conv1) is nn.Conv2d
    assert isinstance(binary.fc1, BinaryLinear) and type(twin.fc1) is nn.Linear
    assert isinstance(twin.act1, nn.ReLU)


def test_cifar_binarynet_width1_layer_widths():
    m = zoo.create("cifar-binarynet")
    convs = [(c.in_channels, c.out_channels) for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert convs == [(3, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
    fcs = [(f.in_features, f.out_features) for f in m.modules() if isinstance(f, nn.Linear)]
    assert fcs == [(8192, 1024), (1024, 1024), (1024, 10)]


def test_mnist_small_dense_is_3136_to_128():
    m = zoo.create("mnist-small")
    assert (m.fc1.in_features, m.fc1.out_features) == (3136, 128)
    assert (m.conv0.in_channels, m.conv0.out_channels) == (1, 32)


def test_width_scales_channels():
    m = zoo.create("cifar-binarynet", width=0.5)
    assert m.conv1.out_channels == 64 and m.fc1.out_features == 512


def test_imagenette_small_input_size_sets_dense_width():
    for size in (64, 96, 128):
        m = zoo.create("imagenette-small", width=0.125, input_size=size)
        assert m.input_shape == (3, size, size)
        assert m.fc1.in_features == m.conv4.out_channels * (size // 32) ** 2
    with pytest.raises(ValueError, match="input_size"):
        zoo.create("imagenette-small", input_size=256)


def test_residual_models_stems_and_hints():
    a = zoo.create("birealnet18", width=0.125, input_size=64)
    assert a.onebit_config["stem"] == "imagenet" and a.dataset_hint == "imagenette"
    assert a(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    b = zoo.create("birealnet18", width=0.125, stem="cifar")
    assert b.input_shape == (3, 32, 32) and b.dataset_hint == "cifar10"
    assert zoo.create("quicknet-small", width=0.125).input_shape == (3, 224, 224)
    binary = [m for m in a.modules() if is_binary_layer(m)]
    assert len(binary) == 16
    assert all(m.input_quantizer.__class__.__name__ == "ApproxSign" for m in binary)


def test_unknown_model_lists_known_names():
    with pytest.raises(zoo.UnknownModelError) as e:
        zoo.create("resnet50")
    assert "resnet50" in str(e.value)
    for name in ALL:
        assert name in str(e.value)
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)


def test_create_rejects_bad_options():
    with pytest.raises(ValueError, match="width"):
        zoo.create("mnist-small", width=0)
    with pytest.raises(ValueError, match="num_classes"):
        zoo.create("mnist-small", num_classes=0)
    with pytest.raises(ValueError, match="no stem option"):
        zoo.create("mnist-small", stem="cifar")
    with pytest.raises(ValueError, match="unknown stem"):
        zoo.create("birealnet18", stem="tiny")
