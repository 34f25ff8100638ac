"""``onebit summary``: a zoo model name (table and JSON), a checkpoint, an unknown name."""
import json

import torch
from click.testing import CliRunner

import onebit
import onebit.models as zoo
from onebit.cli import main as cli


def test_summary_cli_model_name_and_json(tmp_path):
    out = tmp_path / "s.json"
    r = CliRunner().invoke(cli, ["summary", "mnist-small", "--width", "0.25", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "binary MACs" in r.output and "compression" in r.output
    d = json.loads(out.read_text())
    assert d["totals"]["binary_macs"] == onebit.summary(
        zoo.create("mnist-small", width=0.25)).totals["binary_macs"]


def test_summary_cli_checkpoint(tmp_path):
    model = zoo.create("mnist-small", width=0.25)
    path = tmp_path / "m.pt"
    torch.save({"model_config": model.onebit_config, "state_dict": model.state_dict(),
                "dataset": "mnist", "train_config": {}, "metrics": {}, "epoch": 1,
                "optimizer": None, "scheduler": None, "onebit_version": onebit.__version__}, path)
    r = CliRunner().invoke(cli, ["summary", str(path)])
    assert r.exit_code == 0, r.output
    assert "Model: mnist-small (width=0.25" in r.output


def test_summary_cli_unknown_model_is_a_clear_error():
    r = CliRunner().invoke(cli, ["summary", "resnet9000"])
    assert r.exit_code != 0
    assert "known models" in r.output and "mnist-small" in r.output
