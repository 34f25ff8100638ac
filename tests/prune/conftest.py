import pytest
import torch
from torch import nn

import onebit.models
from onebit.nn import BinaryConv2d, BinaryLinear


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics so constant channels are not all zero."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 3)
            m.running_var.copy_(torch.rand(n, generator=g) * 4 + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    return model


@pytest.fixture
def randomize():
    return randomize_bn


@pytest.fixture
def mnist_small():
    """mnist-small at width 0.25 (conv1 8->16, conv2 16->16, fc1 784->32), seeded."""
    def make(seed: int = 0):
        torch.manual_seed(seed)
        return randomize_bn(onebit.models.create("mnist-small", width=0.25), seed)
    return make


class Toy(nn.Module):
    """Float conv -> binary conv (Cin 70: two words) -> BN -> binary conv -> BN -> pool ->
    flatten -> binary dense -> BN -> float dense."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 70, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(70)
        self.conv1 = BinaryConv2d(70, 24, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.conv2 = BinaryConv2d(24, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = BinaryLinear(16 * 4 * 4, 20, bias=False)
        self.bn3 = nn.BatchNorm1d(20)
        self.fc = nn.Linear(20, 10)
        self.input_shape = (1, 8, 8)

    def forward(self, x):
        x = self.bn0(self.conv0(x))
        x = self.bn1(self.conv1(x))
        x = self.pool(self.bn2(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc(self.bn3(self.fc1(x)))


@pytest.fixture
def toy():
    def make(seed: int = 0):
        torch.manual_seed(seed)
        return randomize_bn(Toy(), seed)
    return make


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    # the machine is shared: one intra-op thread keeps these tiny models fast and predictable
    yield
