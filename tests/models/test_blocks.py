"""Residual blocks: the documented dataflow, computed by hand, and int8 data between blocks."""
import torch
from torch import nn

import onebit.models as zoo
from onebit.models.blocks import BinaryResidualBlock, DownsampleShortcut, TransitionBlock
from onebit.models.common import Layers
from onebit.nn import ClipBlock


def _randomize_bn(module):
    g = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


@torch.no_grad()
def test_binary_residual_block_identity_dataflow():
    torch.manual_seed(0)
    blk = BinaryResidualBlock(Layers(False), 8, 8, stride=1, clip_block=True).eval()
    _randomize_bn(blk)
    assert isinstance(blk.shortcut, nn.Identity)
    x = torch.randn(2, 8, 6, 6)
    y = blk.clip1(blk.bn(blk.conv(x)))
    assert torch.equal(blk(x), blk.clip2(y + x))


@torch.no_grad()
def test_binary_residual_block_downsample_dataflow():
    torch.manual_seed(1)
    blk = BinaryResidualBlock(Layers(False), 4, 8, stride=2, clip_block=True).eval()
    _randomize_bn(blk)
    sc = blk.shortcut
    assert isinstance(sc, DownsampleShortcut)
    assert isinstance(sc.pool, nn.AvgPool2d) and sc.conv.kernel_size == (1, 1)
    x = torch.randn(2, 4, 8, 8)
    shortcut = sc.clip(sc.bn(sc.conv(nn.functional.avg_pool2d(x, 2))))
    y = blk.clip1(blk.bn(blk.conv(x)))
    out = blk(x)
    assert out.shape == (2, 8, 4, 4)
    assert torch.equal(out, blk.clip2(y + shortcut))


@torch.no_grad()
def test_transition_block_dataflow():
    blk = TransitionBlock(4, 6, clip_block=False).eval()
    _randomize_bn(blk)
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(blk(x), blk.bn(blk.conv(nn.functional.max_pool2d(x, 2))))


@torch.no_grad()
def test_clip_block_makes_all_data_between_blocks_int8():
    torch.manual_seed(2)
    model = zoo.create("birealnet18", width=0.125, stem="cifar", input_size=16,
                       clip_block=True).eval()
    _randomize_bn(model)
    outs = []
    hooks = [b.register_forward_hook(lambda m, i, o: outs.append((m, o))) for b in model.body]
    hooks.append(model.stem.register_forward_hook(lambda m, i, o: outs.append((m.clip, o))))
    model(torch.randn(2, 3, 16, 16))
    for h in hooks:
        h.remove()
    assert len(outs) == 17
    for m, o in outs:
        clip = m if isinstance(m, ClipBlock) else m.clip2
        q = torch.round(o / clip.scale)
        assert q.abs().max() <= 127
        assert torch.equal(q * torch.tensor(clip.scale), o)
