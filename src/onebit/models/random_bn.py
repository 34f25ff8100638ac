"""Random-weight models with realistic BatchNorm statistics (engine benchmarks, tests, fuzzing).

Random weights alone give BN statistics of 0/1 and thresholds that all sit at 0; randomizing
the running mean/var and the affine parameters (negative gamma included) exercises every branch
of the folding math (direction flips, constant channels, large shifts), and calibrating them on
a random batch puts every threshold near the data, so a random-weight model runs the engine's
kernels as a trained one does (weights do not change latency).
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomize_bn(model: nn.Module, seed: int = 0, zero_gamma: bool = True, input_shape=None) -> nn.Module:
    """Random running stats and affine params for every BN; a few gammas exactly 0 if asked.

    With ``input_shape`` (C, H, W) the statistics are first calibrated on a random batch (BN in
    train mode with momentum 1: running stats = batch stats, layer by layer) and then perturbed
    by up to half a standard deviation, so every channel sits near its data and signs stay mixed.
    Without it, each BN's statistics are drawn on the scale of its pre-activation: the BN's
    ``_onebit_spread`` attribute when set (a binary dot over K bits has std ~ sqrt(K)), else 3.
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
