"""Quantization-aware fine-tuning (onebit.convert.qat): the QAT forward computes the integer
simulation's values, gradients reach every trained parameter, and a fine-tuned model exports."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import onebit.convert as cv
import onebit.models as om
from onebit.convert import qat
from onebit.convert.compare import engine_vs_simulation
from onebit.models import randomize_bn
from onebit.nn import ClipBlock
from onebit.runtime import Session

from tiny_models import MNIST_SPEC, forward_with_outputs, tiny_model

MEAN, STD = MNIST_SPEC["mean"], MNIST_SPEC["std"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(n=32, seed=0):
    u = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8))
    x = ((u.permute(0, 3, 1, 2).double() / 255 - MEAN[0]) / STD[0]).float()
    return u, x


@pytest.mark.parametrize("clip", [False, True], ids=["bits", "clipblock"])
def test_qat_forward_equals_simulation_integers(clip):
    m = tiny_model(3, clip=clip)
    sim = cv.simulate(m, input_spec=MNIST_SPEC)
    u, x = _batch()
    _, env = sim(u, return_values=True)
    q = qat.prepare(copy.deepcopy(m), MEAN, STD, (1, 28, 28)).eval()
    # the first layer's int8 weights and zero point are the exported ones, and its accumulator
    # is the engine's integer accumulator
    op0 = sim.ops[0]
    qw, _, _ = q[0].quantized()
    assert np.array_equal(qw.detach().permute(0, 2, 3, 1).numpy(), sim.file.tensors[op0.tensors["weight"]])
    zp = sim.file.tensors[op0.tensors["zero_point"]]
    assert np.array_equal(q[0].zp.view(-1).numpy(), zp)
    acc = q[0].accumulator(x)
    ref = torch.nn.functional.conv2d(u.permute(0, 3, 1, 2).double() - torch.from_numpy(zp).double().view(1, -1, 1, 1),
                                     sim._w[op0.name], padding=op0.attrs["padding"])
    assert torch.equal(acc, ref)
    out, acts = forward_with_outputs(q, x)
    sign = lambda t: torch.where(t >= 0, 1.0, -1.0)  # noqa: E731
    # every binary value: layer '1' = first BN, '5' = pool after BN '4', '8' = BN of the third conv
    for value, layer in (("0", "1"), ("5", "5"), ("7", "8")):
        assert torch.equal(env[value], sign(acts[layer])), value
    if clip:
        s = q[13].clip.scale
        assert torch.equal(env["11"].flatten(1), torch.round(acts["13"].double() / s).float())
    assert torch.equal(out.argmax(1), env[sim.file.output_name].argmax(1))
    assert torch.allclose(out, env[sim.file.output_name], rtol=0, atol=1e-5)
    # ... while the plain float model differs from the simulation in the first layer's signs
    _, plain = forward_with_outputs(m, x)
    assert not torch.equal(env["0"], sign(plain["1"]))


def test_qat_prepare_strip_roundtrip():
    m = om.create("birealnet18", stem="cifar", clip_block=True, width=0.125)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    q = qat.prepare(m, [0.5] * 3, [0.25] * 3)
    kinds = {type(x).__name__ for x in q.modules()}
    assert {"QATInputConv", "QATClip", "QATInt8Conv"} <= kinds
    n_clip = sum(isinstance(x, ClipBlock) for x in q.modules())
    assert n_clip > 0 and n_clip == sum(isinstance(x, qat.QATClip) for x in q.modules())  # all wrapped
    with pytest.raises(ValueError, match="already prepared"):
        qat.prepare(q, [0.5] * 3, [0.25] * 3)
    s = qat.strip(q)
    assert not any(isinstance(x, qat._WRAPPERS) for x in s.modules())
    assert s.state_dict().keys() == state.keys()
    assert all(torch.equal(s.state_dict()[k], v) for k, v in state.items())


def test_qat_gradients_reach_every_trained_parameter():
    torch.manual_seed(0)
    m = om.create("birealnet18", stem="cifar", clip_block=True, width=0.125)
    randomize_bn(m, 0, input_shape=m.input_shape)
    q = qat.prepare(m, [0.5] * 3, [0.25] * 3)
    q.train()
    qat._freeze_bn(q)
    x = torch.randn(4, 3, 32, 32)
    torch.nn.functional.cross_entropy(q(x), torch.arange(4)).backward()
    named = dict(q.named_parameters())
    first = next(n for n, mod in q.named_modules() if isinstance(mod, qat.QATInputConv))
    assert named[f"{first}.conv.weight"].grad.abs().sum() > 0  # through the int8 weights (STE)
    int8 = next(n for n, mod in q.named_modules() if isinstance(mod, qat.QATInt8Conv))
    assert named[f"{int8}.conv.weight"].grad.abs().sum() > 0
    clips = [n for n, mod in q.named_modules() if isinstance(mod, qat.QATClip)]
    assert any(named[f"{c}.clip.clip"].grad is not None and named[f"{c}.clip.clip"].grad != 0 for c in clips)
    binary = [p for n, p in named.items() if n.endswith("conv.weight") and p.dim() == 4 and "shortcut" not in n
              and not n.startswith(first)]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in binary)
    # frozen BN: running statistics untouched by the training forward
    bn = next(mod for mod in q.modules() if isinstance(mod, nn.BatchNorm2d))
    assert not bn.training


def test_qat_finetune_exports_and_engine_equals_simulation():
    m = tiny_model(4, clip=True)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    loader = [(torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(3)]
    tuned = qat.finetune(m, loader, 5, mean=MEAN, std=STD, lr=1e-3, input_shape=(1, 28, 28))
    assert len(tuned.qat_losses) == 5 and all(np.isfinite(tuned.qat_losses))
    assert all(torch.equal(m.state_dict()[k], v) for k, v in before.items())  # input model untouched
    assert not any(isinstance(x, qat._WRAPPERS) for x in tuned.modules())
    changed = [k for k, v in before.items() if not torch.equal(tuned.state_dict()[k], v)]
    assert "0.weight" in changed and "14.weight" in changed  # float layers train
    assert "3.weight" not in changed and "11.weight" not in changed  # binary latent weights frozen
    assert all(p.requires_grad for p in tuned.parameters())
    both = qat.finetune(m, loader, 2, mean=MEAN, std=STD, lr=1e-3, input_shape=(1, 28, 28), train_binary=True)
    assert not torch.equal(both.state_dict()["11.weight"], before["11.weight"])
    # running statistics frozen
    assert all(torch.equal(tuned.state_dict()[k], before[k]) for k in before if "running" in k)
    sess = Session(cv.to_bytes(tuned, input_spec=MNIST_SPEC))
    u, _ = _batch(4, 5)
    engine_vs_simulation(sess, cv.simulate(sess.model), u.numpy())


def test_qat_finetune_rejects_bad_steps():
    with pytest.raises(ValueError, match="steps"):
        qat.finetune(tiny_model(0), [], 0, mean=MEAN, std=STD, input_shape=(1, 28, 28))
