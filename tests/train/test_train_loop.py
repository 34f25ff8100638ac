"""Short training runs on real MNIST (a few hundred images, a few steps) with mnist-small."""
import json

import pytest
import torch

from onebit.train import TrainConfigError, load_checkpoint, train
from onebit.train.checkpoint import REQUIRED_KEYS
from onebit.train.loop import evaluate, make_test_loader


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_config):
    tmp = tmp_path_factory.mktemp("run")
    cfg = small_config(tmp, json_path=str(tmp / "run.json"))
    return cfg, train(cfg)


def _binary_layers(model):
    from onebit.train.optim import binary_layer_types

    return [m for m in model.modules() if isinstance(m, binary_layer_types())]


def test_train_loss_decreases(run):
    _, r = run
    h = r.history
    assert len(h) == 2
    assert h[1]["train_loss"] < h[0]["train_loss"]
    assert h[1]["test_accuracy"] > 0.3  # 10 classes: chance is 0.1


def test_train_latent_weights_clipped(run):
    _, r = run
    layers = _binary_layers(r.model)
    assert layers, "mnist-small must contain binary layers"
    for m in layers:
        assert float(m.weight.detach().abs().max()) <= 1.0


def test_train_json_has_agreed_keys(run):
    cfg, r = run
    data = json.loads(open(cfg.json_path).read())
    assert {"config", "epochs", "test_accuracy", "train_seconds"} <= set(data)
    assert data["config"]["model"] == "mnist-small"
    assert [e["epoch"] for e in data["epochs"]] == [1, 2]
    assert data["test_accuracy"] == r.history[-1]["test_accuracy"]
    assert data["train_seconds"] > 0
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "images_per_second"):
        assert key in data["epochs"][0]


def test_checkpoint_has_agreed_keys_and_rebuilds_model(run):
    cfg, r = run
    model, ckpt = load_checkpoint(cfg.out)
    assert set(REQUIRED_KEYS) <= set(ckpt)
    assert ckpt["epoch"] == 2 and ckpt["dataset"] == "mnist"
    assert ckpt["model_config"] == dict(r.model.onebit_config)
    assert ckpt["train_config"]["epochs"] == 2
    for (k, a), (k2, b) in zip(r.model.state_dict().items(), model.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    # the rebuilt model reproduces the recorded test accuracy exactly
    ev = evaluate(model, make_test_loader(cfg), torch.device("cpu"))
    assert ev["accuracy"] == ckpt["metrics"]["test_accuracy"]


def test_train_deterministic_with_seed(run, tmp_path):
    cfg, r = run
    again = train(cfg.replace(out=str(tmp_path / "again.pt"), json_path=None))
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in r.history]
    for (k, a), b in zip(r.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_train_other_seed_differs(run, tmp_path):
    cfg, r = run
    other = train(cfg.replace(seed=1, epochs=1, out=None, json_path=None))
    assert other.history[0]["train_loss"] != r.history[0]["train_loss"]


def test_resume_reaches_identical_state(run, tmp_path):
    cfg, r = run
    path = str(tmp_path / "resume.pt")
    first = train(cfg.replace(out=path, json_path=None, stop_after=1))
    assert len(first.history) == 1
    resumed = train(cfg.replace(out=path, json_path=None, resume=path))
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in r.history]
    for (k, a), b in zip(r.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    _, c_full = load_checkpoint(cfg.out)
    _, c_res = load_checkpoint(path)
    for a, b in zip(c_full["optimizer"]["state"].values(), c_res["optimizer"]["state"].values()):
        assert all(torch.equal(a[n], b[n]) for n in ("exp_avg", "exp_avg_sq"))
    assert c_full["scheduler"]["last_epoch"] == c_res["scheduler"]["last_epoch"]


def test_resume_rejects_finished_checkpoint(run):
    cfg, _ = run
    with pytest.raises(TrainConfigError, match="already holds 2 epochs"):
        train(cfg.replace(resume=cfg.out, out=None, json_path=None))


def test_resume_rejects_other_model(run):
    from onebit.train import CheckpointError

    cfg, _ = run
    with pytest.raises(CheckpointError, match="differs"):
        train(cfg.replace(width=2.0, epochs=3, resume=cfg.out, out=None, json_path=None))


def test_train_rejects_unknown_model(tmp_path, small_config):
    with pytest.raises(Exception, match="no-such-model"):
        train(small_config(tmp_path, model="no-such-model", epochs=1))
