"""``onebit train`` through click's CliRunner on a few hundred real MNIST images."""
import json

import pytest
import torch
from click.testing import CliRunner

from onebit.cli import main

pytestmark = pytest.mark.usefixtures("datasets_root")


def test_train_cli_writes_checkpoint_and_json(tmp_path):
    out, js = tmp_path / "m.pt", tmp_path / "m.json"
    r = CliRunner().invoke(main, [
        "train", "mnist-small", "--dataset", "mnist", "--epochs", "1", "--batch-size", "64",
        "--lr", "0.002", "--limit-train", "256", "--limit-test", "128", "--out", str(out),
        "--json", str(js), "--device", "cpu", "--seed", "3", "--threads", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "test_accuracy" in r.output and "train_seconds" in r.output
    data = json.loads(js.read_text())
    assert {"config", "epochs", "test_accuracy", "train_seconds"} <= set(data)
    assert data["config"]["seed"] == 3 and data["config"]["limit_train"] == 256
    assert data["environment"]["torch_threads"] == 1
    assert 0.0 <= data["test_accuracy"] <= 1.0
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["train_config"]["batch_size"] == 64


def test_train_cli_unknown_model_is_a_clear_error():
    r = CliRunner().invoke(main, ["train", "no-such-net", "--dataset", "mnist", "--epochs", "1", "--quiet"])
    assert r.exit_code != 0
    assert "no-such-net" in r.output


def test_train_cli_unknown_dataset_is_a_clear_error():
    r = CliRunner().invoke(main, ["train", "mnist-small", "--dataset", "nodata", "--epochs", "1", "--quiet"])
    assert r.exit_code != 0
    assert "nodata" in r.output


def test_train_cli_rejects_zero_epochs():
    r = CliRunner().invoke(main, ["train", "mnist-small", "--dataset", "mnist", "--epochs", "0"])
    assert r.exit_code == 2 and "--epochs" in r.output


def test_train_cli_resume_missing_checkpoint(tmp_path):
    r = CliRunner().invoke(main, ["train", "mnist-small", "--dataset", "mnist", "--epochs", "1", "--quiet",
                                  "--limit-train", "64", "--resume", str(tmp_path / "gone.pt")])
    assert r.exit_code != 0 and "gone.pt" in r.output
