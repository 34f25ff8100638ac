"""Small convertible models with randomized BatchNorm statistics (tests, fuzzing, examples).

Random weights alone give BN statistics of 0/1 and thresholds that all sit at 0; randomizing
the running mean/var and the affine parameters (negative gamma included) exercises every branch
of the folding math (direction flips, constant channels, large shifts).
"""
from __future__ import annotations

import torch
from torch import nn

MNIST_SPEC = {"dataset": "mnist", "shape": [28, 28, 1], "mean": [0.1307], "std": [0.3081]}
CIFAR_SPEC = {"dataset": "cifar10", "shape": [32, 32, 3], "mean": [0.4914, 0.4822, 0.4465],
              "std": [0.2470, 0.2435, 0.2616]}


@torch.no_grad()
def randomize_bn(model: nn.Module, seed: int = 0, zero_gamma: bool = True, input_shape=None) -> nn.Module:
    """Random running stats and affine params for every BN; a few gammas exactly 0 if asked.

    With ``input_shape`` (C, H, W) the statistics are first calibrated on a random batch (BN in
    train mode with momentum 1: running stats = batch stats, layer by layer) and then perturbed
    by up to half a standard deviation, so every channel sits near its data and signs stay mixed.
    """
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    if input_shape is not None:
        was = model.training
        moms = [m.momentum for m in bns]
        for m in bns:
            m.momentum = 1.0
        model.train()
        model(torch.randn((16,) + tuple(input_shape), generator=g))
        model.train(was)
        for m, mo in zip(bns, moms):
            m.momentum = mo
    for m in bns:
        n = m.num_features
        if input_shape is not None:
            sd = m.running_var.sqrt()
            m.running_mean.add_((torch.rand(n, generator=g) - 0.5) * sd)
            m.running_var.mul_(torch.rand(n, generator=g) * 1.5 + 0.5)
        else:
            # on the scale of the layer's pre-activation (a binary dot over K bits has std ~ sqrt(K))
            spread = float(getattr(m, "_onebit_spread", 3.0))
            m.running_mean.copy_((torch.rand(n, generator=g) * 2 - 1) * spread)
            m.running_var.copy_(torch.rand(n, generator=g) * 4 * spread**2 + 0.25)
        if m.weight is not None:
            m.weight.copy_(torch.rand(n, generator=g) * 2 - 1)
            if zero_gamma and n > 2:
                m.weight[n // 2] = 0.0
            m.bias.copy_((torch.rand(n, generator=g) * 2 - 1) * 0.5)
    return model


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


def long_form_bytes(data: bytes, *, mask: bool = True, weight: bool = True) -> bytes:
    """A model file's bytes with its pruned ops rewritten in the long storage forms of
    docs/format.md §7.3: every compact ``weight_word_mask`` as the full ``weight_mask`` (``mask``)
    and every ``weight_kept`` as the full packed ``weight`` (``weight``). The same model, as the
    converter wrote it before compact storage (tests and benchmarks compare the forms)."""
    import json
    import struct

    from onebit.runtime import format as fmt

    mf = fmt.loads(data)
    n = struct.unpack("<Q", data[:8])[0]
    graph = json.loads(json.loads(data[8:8 + n])["__metadata__"]["graph"])
    tensors = dict(mf.tensors)
    for op, d in zip(mf.ops, graph["ops"]):
        roles = d["tensors"]
        if mask and "weight_word_mask" in roles:
            del tensors[roles.pop("weight_word_mask")]
            roles["weight_mask"] = f"{op.name}.weight_mask"
            tensors[roles["weight_mask"]] = mf.weight_mask(op)
        if weight and "weight_kept" in roles:
            del tensors[roles.pop("weight_kept")]
            del d["attrs"]["kept_weights"]
            roles["weight"] = f"{op.name}.weight"
            tensors[roles["weight"]] = mf.weight(op)
    out = fmt.dumps(mf.metadata, graph, tensors)
    fmt.loads(out)  # still a valid file
    return out
