"""Small convertible models for the tests: input specs, a tiny and an exact model, one-shot pruning.

Their BatchNorm statistics are randomized (``onebit.models.randomize_bn``) so that every branch
of the folding math is exercised. Importable from any test module (``tests/`` is on the path of
the suite, see ``tests/conftest.py``).
"""
from __future__ import annotations

import torch
from torch import nn

from onebit.models import randomize_bn

MNIST_SPEC = {"dataset": "mnist", "shape": [28, 28, 1], "mean": [0.1307], "std": [0.3081]}
CIFAR_SPEC = {"dataset": "cifar10", "shape": [32, 32, 3], "mean": [0.4914, 0.4822, 0.4465],
              "std": [0.2470, 0.2435, 0.2616]}


def _bn(n, spread, dim=2):
    b = nn.BatchNorm2d(n) if dim == 2 else nn.BatchNorm1d(n)
    b._onebit_spread = spread
    return b


def tiny_model(seed: int = 0, clip: bool = False, in_ch: int = 1, size: int = 28) -> nn.Sequential:
    """Float conv -> binary conv -> pool -> binary conv -> binary dense -> float dense (eval mode).

    Channel counts straddle word boundaries (70 channels = 2 words with padding bits). With
    ``clip=True`` the binary dense's BN feeds a ClipBlock (int8 stage) before the float head.
    """
    from onebit.nn import BinaryConv2d, BinaryLinear, ClipBlock

    torch.manual_seed(seed)
    s2 = (size // 2) - 2
    layers = [nn.Conv2d(in_ch, 8, 3, padding=1), _bn(8, 1.0), nn.Hardtanh(),
              BinaryConv2d(8, 16, 3, padding=1, bias=False), _bn(16, 6.0), nn.MaxPool2d(2), nn.Hardtanh(),
              BinaryConv2d(16, 70, 3, bias=False), _bn(70, 8.0), nn.Hardtanh(), nn.Flatten(),
              BinaryLinear(70 * s2 * s2, 32, bias=False), _bn(32, 60.0, 1)]
    layers += [ClipBlock(2.0)] if clip else [nn.Hardtanh()]
    layers += [nn.Linear(32, 10)]
    model = nn.Sequential(*layers)
    randomize_bn(model, seed)
    return model.eval()


# With mean 0 and std 1/255 the model sees the raw uint8 values, and a first conv with weights
# in {-1, 0, 1} quantizes exactly (q = 127 w): the whole integer pipeline then equals the float
# model except at exact ties, so signs, pooling, flatten order and the head are all checked.
RAW_SPEC = {"dataset": "raw", "shape": [12, 12, 2], "mean": [0.0, 0.0], "std": [1 / 255, 1 / 255]}


def exact_model(seed=0, clip=False):
    """A model whose integer pipeline equals its float forward pass (see RAW_SPEC)."""
    from onebit.nn import BinaryConv2d, BinaryLinear, ClipBlock

    torch.manual_seed(seed)
    layers = [nn.Conv2d(2, 9, 3, padding=1), nn.BatchNorm2d(9), nn.Hardtanh(),
              BinaryConv2d(9, 70, 3, padding=1, bias=False), nn.BatchNorm2d(70), nn.MaxPool2d(2),
              nn.Hardtanh(), BinaryConv2d(70, 65, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(65),
              nn.Flatten(), BinaryLinear(65 * 9, 33), nn.BatchNorm1d(33)]
    layers += [ClipBlock(3.0)] if clip else [nn.Hardtanh()]
    layers += [BinaryLinear(33, 20, bias=False), nn.BatchNorm1d(20), nn.Linear(20, 7)]
    m = nn.Sequential(*layers)
    with torch.no_grad():
        m[0].weight.copy_(torch.randint(-1, 2, m[0].weight.shape).float())
        m[0].weight[:, 0, 0, 0] = 1.0  # max |w| = 1 in every output channel
        m[0].bias.uniform_(-20, 20)
    randomize_bn(m, seed, input_shape=(2, 12, 12))
    return m.eval()


def pruned(model: nn.Module, granularity: str, target: float = 0.4, input_size=None,
           method: str = "latent", seed: int = 0) -> nn.Module:
    """``model`` pruned in place by ``onebit.prune.Pruner`` to ``target`` fewer binary ops at
    ``granularity`` (one shot, no fine-tuning) and finalized (channel granularity shrinks the
    layers); eval mode. ``input_size`` (C, H, W) for models without ``input_shape``."""
    from onebit.prune import Pruner

    p = Pruner(model, method, granularity, target, input_size=input_size, seed=seed).prepare()
    p.prune()
    return p.finalize().eval()


def forward_with_outputs(model: nn.Module, x: torch.Tensor, modules: str = "children"):
    """``(model(x), {name: output})`` without grad: the output of every named child (``modules=
    "children"``) or every named module (``"modules"``)."""
    outs = {}
    named = model.named_children() if modules == "children" else model.named_modules()
    hooks = [mod.register_forward_hook(lambda mm, i, o, n=n: outs.__setitem__(n, o)) for n, mod in named]
    try:
        with torch.no_grad():
            return model(x), outs
    finally:
        for h in hooks:
            h.remove()


def assert_simulation_equals_float(sim, model: nn.Module, n: int, seed: int = 0) -> None:
    """On ``n`` random raw images (RAW_SPEC: the model sees the uint8 values), the simulation gives
    the float model's argmax and its logits to float32 rounding."""
    shape = tuple(sim.file.input_spec["shape"])
    u = torch.randint(0, 256, (n,) + shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = model(u.permute(0, 3, 1, 2).float())
    out = sim(u)
    assert torch.equal(out.argmax(1), ref.argmax(1))
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4)
