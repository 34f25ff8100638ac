"""The int8-quantized float twin: per-channel quantization, random flips of exactly N bits,
the bit-flip attack's search on its int8 weights, the study and CLI, and bad requests."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from onebit.robustness import RobustnessError
from onebit.robustness import progressive as pbs
from onebit.robustness.int8_twin import Int8Twin, Int8Weights, twin_study
from onebit.robustness.sites import flip_bits, int8_bits, random_order


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _tiny():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4 * 6 * 6, 5))
    return m.eval()


def _diff_bits(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


@pytest.fixture(scope="module")
def twin_ckpt(tmp_path_factory, datasets_root):
    """mnist-small's float twin, width 0.25, one epoch on 512 images."""
    from onebit.train import TrainConfig, train

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("twin") / "twin.pt"
        train(TrainConfig(model="mnist-small", dataset="mnist", width=0.25, epochs=1, batch_size=64, lr=2e-3,
                          limit_train=512, limit_test=64, float_twin=True, progress=False, device="cpu",
                          threads=1, out=str(out)))
    finally:
        torch.set_num_threads(n)
    return out


def test_weights_are_per_channel_symmetric_int8():
    m = _tiny()
    twin = Int8Twin(m)
    assert [lay.name for lay in twin.layers] == ["0", "4"]
    for lay, src in zip(twin.layers, (m[0], m[4])):
        w = src.weight.detach().reshape(src.weight.shape[0], -1)
        s = w.abs().amax(1) / 127
        assert torch.allclose(lay.scale, s)
        q = lay.q.reshape(w.shape).to(torch.float32)
        assert torch.equal(q, torch.clamp(torch.round(w / s[:, None]), -127, 127))
        assert int(q.abs().amax()) == 127
        assert torch.equal(lay.module.weight.detach().reshape(w.shape), q * lay.scale[:, None])
    assert m[0].weight is not twin.layers[0].module.weight  # a copy: the float model is untouched


@pytest.mark.parametrize("n", [1, 7, 300])
def test_random_flips_change_exactly_n_bits_of_the_int8_weights(n):
    twin = Int8Twin(_tiny())
    sites = twin.sites()
    assert sites.count == sum(len(int8_bits(lay.q.numpy())) for lay in twin.layers)
    base = twin.to_bytes()
    flipped, info = flip_bits(base, sites, random_order(sites, n, 0, 0), n)
    assert info["flipped"] == n
    twin.set_bytes(flipped)
    assert _diff_bits(base, twin.to_bytes()) == n
    assert min(int(lay.q.min()) for lay in twin.layers) >= -127  # never onto -128
    changed = sum(int((lay.module.weight.detach().reshape(-1) != lay.q.float() * lay.scale.repeat_interleave(
        lay.module.weight[0].numel())).sum()) for lay in twin.layers)
    assert changed == 0  # the float weights follow the flipped int8 weights
    twin.set_bytes(base)
    assert twin.to_bytes() == base


def test_progressive_search_raises_the_loss_step_by_step():
    twin = Int8Twin(_tiny())
    torch.manual_seed(1)
    x, y = torch.randn(32, 1, 6, 6), torch.randint(0, 5, (32,))
    with torch.no_grad():
        clean = float(nn.functional.cross_entropy(twin.model(x), y))
    base = twin.to_bytes()
    flips = pbs.search(twin.model, x, y, 6, target=Int8Weights(twin))
    losses = [f["loss"] for f in flips]
    assert clean < losses[0] and all(a <= b for a, b in zip(losses, losses[1:]))
    assert len({(f["layer"], f["index"], f["bit"]) for f in flips}) == 6
    assert _diff_bits(base, twin.to_bytes()) == 6
    # the searched bits raise the loss more than as many random ones
    rnd = Int8Twin(_tiny())
    sites = rnd.sites()
    rnd.set_bytes(flip_bits(rnd.to_bytes(), sites, random_order(sites, 6, 0, 0), 6)[0])
    with torch.no_grad():
        assert float(nn.functional.cross_entropy(rnd.model(x), y)) < losses[-1]


def test_study_random_and_progressive_on_the_twin(twin_ckpt, datasets_root):
    rnd = twin_study(twin_ckpt, "mnist", [0, 2, 5], trials=2, limit=100, threads=1)
    assert rnd["images"] == 100 and rnd["sites"]["int8"]["bits"] > 0
    assert [r["flips"] for r in rnd["rows"]] == [0, 2, 5] and len(rnd["rows"][1]["trials"]) == 2
    assert rnd["rows"][0]["accuracy"] == rnd["clean_accuracy"]
    assert abs(rnd["clean_accuracy"] - rnd["float_accuracy"]) < 0.1
    prog = twin_study(twin_ckpt, "mnist", [1, 3], mode="progressive", attack_batch=32, limit=100, threads=1)
    assert len(prog["search"]["flips"]) == 3 and prog["rows"][-1]["attack_loss"] == prog["search"]["flips"][-1]["loss"]
    again = twin_study(twin_ckpt, "mnist", [1, 3], mode="progressive", attack_batch=32, limit=100, threads=1)
    assert again["search"]["flips"] == prog["search"]["flips"]  # seeded: the same attack batch and search


def test_cli_compares_the_bnn_with_its_int8_twin(mnist_model, tmp_path):
    from onebit.cli import main
    from onebit.train import TrainConfig, train

    twin = tmp_path / "twin.pt"  # the twin of the shared BNN: same model, same width
    train(TrainConfig(model="mnist-small", dataset="mnist", epochs=1, batch_size=64, lr=2e-3, limit_train=256,
                      limit_test=64, float_twin=True, progress=False, device="cpu", threads=1, out=str(twin)))
    r = CliRunner().invoke(main, ["robustness", str(mnist_model[1]), "--dataset", "mnist", "--flips", "1,4",
                                  "--mode", "progressive", "--checkpoint", str(mnist_model[0]), "--twin", str(twin),
                                  "--attack-batch", "16", "--limit", "50", "--threads", "1", "--quiet",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "int8 twin" in r.output
    rec = json.loads((tmp_path / "o" / "robustness.json").read_text())
    assert [x["flips"] for x in rec["twin"]["rows"]] == [x["flips"] for x in rec["rows"]] == [1, 4]
    assert (tmp_path / "o" / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_requests_are_clear_errors(twin_ckpt, mnist_model):
    twin = Int8Twin(_tiny())
    n = twin.sites().count
    with pytest.raises(RobustnessError, match=f"{n + 1} flips requested but the model has only {n} int8 bits"):
        random_order(twin.sites(), n + 1, 0, 0)
    with pytest.raises(RobustnessError, match="flips requested but the int8 twin has only"):
        twin_study(twin_ckpt, "mnist", [10**9], limit=10)
    with pytest.raises(RobustnessError, match="unknown mode 'greedy'"):
        twin_study(twin_ckpt, "mnist", [1], mode="greedy", limit=10)
    with pytest.raises(RobustnessError, match="trained on 'mnist', not 'fashion-mnist'"):
        twin_study(twin_ckpt, "fashion-mnist", [1], limit=10)
    with pytest.raises(RobustnessError, match="is not a float twin"):
        twin_study(mnist_model[0], "mnist", [1], limit=10)
    with pytest.raises(RobustnessError, match="is not the BNN's twin"):  # width 0.25 vs the BNN's 1
        twin_study(twin_ckpt, "mnist", [1], limit=10, bnn_checkpoint=mnist_model[0])
    with pytest.raises(RobustnessError, match="layer 'conv1' is binary"):
        from onebit.prune.checkpoint import load_checkpoint

        Int8Twin(load_checkpoint(mnist_model[0])[0])
    with pytest.raises(RobustnessError, match="bytes of int8 weights"):
        twin.set_bytes(b"\0")
