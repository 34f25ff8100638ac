"""Device-resident data and the accelerator options of ``onebit train``, checked on the CPU.

The resident loader must hand the model exactly the batches of the streaming loader (same
shuffle, same augmentation draws, same arithmetic), so a run with ``resident=True`` ends in
the same weights as one with ``resident=False``; options that change the maths (bf16,
channels_last) are checked for what they promise instead.
"""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from onebit.data.batches import Loader
from onebit.data.registry import info
from onebit.train import TrainConfig, TrainConfigError, train
from onebit.train import accel as accel_mod
from onebit.train.resident import ResidentLoader

_TIMING_KEYS = {"train_seconds", "images_per_second"}


def _synthetic(n=37, size=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return images, labels


@pytest.mark.parametrize("policy", ["none", "flip", "crop", "crop+flip", "rrc"])
@pytest.mark.parametrize("rank,world", [(0, 1), (1, 2)])
def test_resident_batches_equal_streamed_batches(policy, rank, world):
    images, labels = _synthetic()
    host = Loader(images, labels, info("cifar10"), 8, shuffle=True, augment=policy, train=True,
                  seed=5, rank=rank, world_size=world)
    res = ResidentLoader(Loader(images, labels, info("cifar10"), 8, shuffle=True, augment=policy,
                                train=True, seed=5, rank=rank, world_size=world), "cpu", policy)
    assert len(res) == len(host) and res.num_samples == host.num_samples
    for epoch in (0, 3):
        host.set_epoch(epoch)
        res.set_epoch(epoch)
        pairs = list(zip(host, res, strict=True))
        assert len(pairs) == len(host)
        for (xh, yh), (xr, yr) in pairs:
            assert xr.dtype == torch.float32 and xr.is_contiguous()
            assert torch.equal(xh, xr) and xh.stride() == xr.stride()
            assert torch.equal(yh, yr)


def test_resident_batches_one_channel_have_the_streamed_strides():
    images, labels = _synthetic(n=20, size=28, channels=1)
    host = Loader(images, labels, info("mnist"), 8, shuffle=True, train=True, seed=2)
    res = ResidentLoader(Loader(images, labels, info("mnist"), 8, shuffle=True, train=True, seed=2), "cpu")
    for (xh, yh), (xr, yr) in zip(host, res, strict=True):
        assert torch.equal(xh, xr) and torch.equal(yh, yr)
        assert xh.stride() == xr.stride()


def test_resident_augmentation_changes_with_epoch_and_is_a_crop_and_flip():
    images, labels = _synthetic(n=16)
    res = ResidentLoader(Loader(images, labels, info("cifar10"), 16, shuffle=False, augment="crop+flip",
                                train=True, seed=1), "cpu", "crop+flip")
    res.set_epoch(0)
    (a, _), = list(res)
    res.set_epoch(1)
    (b, _), = list(res)
    assert not torch.equal(a, b)
    plain = ResidentLoader(Loader(images, labels, info("cifar10"), 16, shuffle=False, augment="none"), "cpu")
    (x0, _), = list(plain)
    # every augmented image is its source shifted by at most 4 px (zero fill) and maybe mirrored
    zero = -torch.tensor(info("cifar10").mean) / torch.tensor(info("cifar10").std)  # a black pixel
    for i in range(16):
        src = x0[i]
        found = False
        for flip in (False, True):
            s = src.flip(-1) if flip else src
            padded = zero.view(3, 1, 1).expand(3, 40, 40).clone()
            padded[:, 4:36, 4:36] = s
            for dy in range(9):
                for dx in range(9):
                    if torch.allclose(padded[:, dy:dy + 32, dx:dx + 32], a[i], rtol=0, atol=1e-6):
                        found = True
        assert found, f"image {i} is not a padded crop (+flip) of its source"


def test_resident_rejects_unknown_policy():
    images, labels = _synthetic(n=4)
    with pytest.raises(ValueError, match="unknown augmentation policy 'blur'"):
        ResidentLoader(Loader(images, labels, info("cifar10"), 2), "cpu", "blur")


def _strip(history):
    return [{k: v for k, v in h.items() if k not in _TIMING_KEYS} for h in history]


def test_train_resident_equals_streamed_mnist(tmp_path, small_config):
    a = train(small_config(tmp_path / "a", resident=False))
    b = train(small_config(tmp_path / "b", resident=True))
    assert a.environment["accel"]["resident"] is False and b.environment["accel"]["resident"] is True
    assert _strip(a.history) == _strip(b.history)
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert torch.equal(va, vb), k


def test_train_resident_equals_streamed_cifar_with_augmentation(tmp_path, small_config):
    kw = dict(model="cifar-binarynet", dataset="cifar10", width=0.125, epochs=1, batch_size=32,
              limit_train=96, limit_test=64)
    a = train(small_config(tmp_path / "a", resident=False, **kw))
    b = train(small_config(tmp_path / "b", resident=True, **kw))
    assert a.config.augment and _strip(a.history) == _strip(b.history)
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert torch.equal(va, vb), k


def test_accel_defaults_on_cpu(tmp_path, small_config):
    cfg = small_config(tmp_path)
    model = torch.nn.Linear(2, 2)
    acc = accel_mod.resolve(cfg, torch.device("cpu"), model)
    assert (acc.bf16, acc.resident, acc.channels_last, acc.compile, acc.deterministic) == \
        (False, False, False, False, True)
    assert acc.bf16_reason == "off (default on cpu)"


def test_accel_bf16_off_for_clip_blocks(tmp_path, small_config):
    from onebit.nn import ClipBlock

    cfg = small_config(tmp_path, bf16=True)
    assert accel_mod.resolve(cfg, torch.device("cpu"), torch.nn.Linear(2, 2)).bf16 is True
    acc = accel_mod.resolve(cfg, torch.device("cpu"), torch.nn.Sequential(torch.nn.Linear(2, 2), ClipBlock()))
    assert acc.bf16 is False and "int8 grid" in acc.bf16_reason


def test_train_bf16_and_channels_last_on_cpu(tmp_path, small_config):
    ref = train(small_config(tmp_path / "r", epochs=1))
    r = train(small_config(tmp_path / "b", epochs=1, bf16=True, channels_last=True))
    env = r.environment["accel"]
    assert env["bf16"] is True and env["channels_last"] is True
    conv = next(m for m in r.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # bf16 changes the rounding, not the training: the first epoch's loss stays close
    assert abs(r.history[0]["train_loss"] - ref.history[0]["train_loss"]) < 0.05
    assert r.history[0]["test_accuracy"] > 0.3
    # the checkpoint holds float32 weights that load into a plain model
    from onebit.train import load_checkpoint

    model, _ = load_checkpoint(r.checkpoint)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.slow
def test_train_compile_on_cpu(tmp_path, small_config):
    r = train(small_config(tmp_path, epochs=1, limit_train=128, limit_test=128, compile=True, resident=True))
    assert r.environment["accel"]["compile"] is True
    assert r.history[0]["test_accuracy"] > 0.1
    assert not any(k.startswith("_orig_mod") for k in torch.load(r.checkpoint, weights_only=True)["state_dict"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is absent")
def test_train_cuda_without_cuda_is_a_clear_error(tmp_path, small_config):
    with pytest.raises(TrainConfigError, match="no CUDA device is available.*use --device cpu or auto"):
        train(small_config(tmp_path, device="cuda"))
    from onebit.cli import main

    r = CliRunner().invoke(main, ["train", "mnist-small", "--dataset", "mnist", "--epochs", "1",
                                  "--device", "cuda", "--quiet"])
    assert r.exit_code == 1
    assert "device 'cuda' requested but no CUDA device is available" in r.output


@pytest.mark.parametrize("field,value", [("resident", "yes"), ("bf16", 1), ("compile", None),
                                         ("channels_last", "on"), ("deterministic", 0)])
def test_config_rejects_bad_accel_values(field, value):
    with pytest.raises(TrainConfigError, match=field):
        TrainConfig(model="mnist-small", dataset="mnist", **{field: value})


def test_cli_progress_bar_shows_throughput(tmp_path):
    from onebit.cli import main

    r = CliRunner().invoke(main, ["train", "mnist-small", "--dataset", "mnist", "--epochs", "1",
                                  "--batch-size", "64", "--limit-train", "128", "--limit-test", "64",
                                  "--device", "cpu", "--resident", "--threads", "1",
                                  "--json", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert "img_s=" in r.output  # tqdm postfix of the progress bar
    import json

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["environment"]["accel"]["resident"] is True
    assert data["epochs"][0]["images_per_second"] > 0


def test_budget_fits_epochs_and_leaves_the_run_unchanged(tmp_path, small_config):
    from onebit.train.budget import fit_epochs

    assert fit_epochs(100.0, 10, 1.0, 0, 64, 50) == 10
    assert fit_epochs(100.0, 10, 1.0, 0, 64, 4) == 4
    assert fit_epochs(1.0, 10, 1.0, 0, 64, 50) == 1  # at least one epoch
    assert fit_epochs(100.0, 10, 1.0, 64 * 30, 64, 50) == 5  # eval: 30 batches at a third of a step
    r = train(small_config(tmp_path / "b", epochs=3, budget_s=600.0))
    b = r.environment["budget"]
    assert b["max_epochs"] == 3 and b["epochs"] == 3 and b["step_seconds"] > 0
    assert r.config.epochs == b["epochs"] == len(r.history)
    # measuring on copies leaves the run as it would be with that many epochs
    short = train(small_config(tmp_path / "s", epochs=50, budget_s=1e-3))
    assert short.environment["budget"]["epochs"] == 1
    ref1 = train(small_config(tmp_path / "r1", epochs=1))
    assert _strip(short.history) == _strip(ref1.history)


def test_budget_with_resume_is_a_clear_error():
    with pytest.raises(TrainConfigError, match="budget_s cannot be combined with resume"):
        TrainConfig(model="mnist-small", dataset="mnist", budget_s=10.0, resume="x.pt")


def test_init_finetunes_a_channel_pruned_checkpoint_and_keeps_its_plan(tmp_path, small_config):
    from onebit.prune.checkpoint import load_checkpoint as load_any
    from onebit.prune.pipeline import prune_checkpoint

    base = train(small_config(tmp_path / "base", epochs=1))
    pruned = tmp_path / "pruned.pt"
    prune_checkpoint(base.checkpoint, granularity="channel", target=0.4, out=pruned, val_size=64,
                     limit_test=128, progress=False)
    ft = train(small_config(tmp_path / "ft", epochs=1, init=str(pruned), lr=1e-4))
    model, ckpt = load_any(ft.checkpoint)
    assert ckpt["prune_info"]["channels"] == torch.load(pruned, weights_only=True)["prune_info"]["channels"]
    for (k, a), (_, b) in zip(model.state_dict().items(), ft.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert ft.environment["init"]["checkpoint"] == str(pruned)


def test_init_of_another_model_is_a_clear_error(tmp_path, small_config):
    base = train(small_config(tmp_path / "base", epochs=1))
    from onebit.train import CheckpointError

    with pytest.raises(CheckpointError, match="holds model 'mnist-small', this run trains 'cifar-binarynet'"):
        train(small_config(tmp_path / "x", model="cifar-binarynet", init=base.checkpoint))
    with pytest.raises(CheckpointError, match="not found"):
        train(small_config(tmp_path / "y", init=str(tmp_path / "gone.pt")))


def test_resume_of_a_pruned_finetune_continues_exactly(tmp_path, small_config):
    from onebit.prune.pipeline import prune_checkpoint

    base = train(small_config(tmp_path / "base", epochs=1))
    pruned = tmp_path / "pruned.pt"
    prune_checkpoint(base.checkpoint, granularity="channel", target=0.4, out=pruned, val_size=64,
                     limit_test=128, progress=False)
    full = train(small_config(tmp_path / "full", epochs=2, init=str(pruned), lr=1e-4))
    part = train(small_config(tmp_path / "part", epochs=2, init=str(pruned), lr=1e-4, stop_after=1))
    rest = train(small_config(tmp_path / "part", epochs=2, resume=part.checkpoint, lr=1e-4,
                              out=str(tmp_path / "rest.pt")))
    assert _strip(rest.history) == _strip(full.history)
    for (k, a), (_, b) in zip(full.model.state_dict().items(), rest.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert torch.load(tmp_path / "rest.pt", weights_only=True)["prune_info"]["channels"]
