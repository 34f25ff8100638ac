"""``onebit prune --method bitslice``: sensitivity table, plane choice within the budget, shrunk
checkpoint that rebuilds, exports and runs; clear errors for a model without bit planes."""
import json

import pytest
import torch
from click.testing import CliRunner

from onebit.cli import main
from onebit.prune.checkpoint import load_checkpoint

SMALL = ["--limit-train", "128", "--limit-test", "200", "--val-size", "200", "--batch-size", "64", "--quiet"]


@pytest.fixture
def planes_ckpt(tmp_path, datasets_root):
    import onebit.models
    from onebit.models import randomize_bn
    from onebit.train import save_checkpoint

    torch.manual_seed(0)
    model = randomize_bn(onebit.models.create("mnist-small", width=0.25, input_bits=8), 0)
    path = tmp_path / "planes.pt"
    save_checkpoint(path, {"model_config": dict(model.onebit_config), "state_dict": model.state_dict(),
                           "dataset": "mnist", "train_config": {}, "metrics": {}, "epoch": 0,
                           "optimizer": None, "scheduler": None, "onebit_version": "0"})
    return path


def test_cli_prune_bitslice_smoke(tmp_path, planes_ckpt):
    out, js, plots = tmp_path / "p.pt", tmp_path / "r.json", tmp_path / "plots"
    res = CliRunner().invoke(main, ["prune", str(planes_ckpt), "--method", "bitslice", "--max-loss", "2",
                                    "--noise-seeds", "2", "--finetune-epochs", "1", "-o", str(out),
                                    "--json", str(js), "--plot", str(plots), *SMALL])
    assert res.exit_code == 0, res.output
    rec = json.loads(js.read_text())
    s = rec["sensitivity"]
    assert len(s["accuracy"]) == 8 and len(s["cumulative"]) == 7 and s["seeds"] == 2
    keep = rec["pruned"]["planes"]
    assert 1 <= len(keep) <= 8 and set(keep) <= set(range(8))
    dropped = 8 - len(keep)
    if dropped:  # the chosen prefix is within the budget
        assert s["baseline"] - s["cumulative"][dropped - 1] <= 0.02
    if dropped < 7:  # and the next one is not
        assert s["baseline"] - s["cumulative"][dropped] > 0.02
    assert (plots / "plane_sensitivity.png").stat().st_size > 0
    model, saved = load_checkpoint(out)
    assert saved["model_config"]["input_bits"] == keep
    assert model.conv0.in_channels == len(keep) and list(model.planes.planes) == keep
    from onebit.convert import to_bytes
    from onebit.runtime import Session

    x = torch.randint(0, 256, (2, 28, 28, 1), dtype=torch.uint8).numpy()
    assert Session(to_bytes(model)).run(x).shape == (2, 10)


def test_cli_prune_bitslice_rejects_a_model_without_planes(tmp_path, ckpt):
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--method", "bitslice", "-o", str(tmp_path / "x.pt"),
                                    *SMALL])
    assert res.exit_code != 0
    assert "no bit-plane input" in res.output


def test_cli_train_rejects_bad_input_bits(tmp_path):
    res = CliRunner().invoke(main, ["train", "mnist-small", "--dataset", "mnist", "--input-bits", "9",
                                    "--epochs", "1", "--quiet"])
    assert res.exit_code != 0 and "input_bits" in res.output
    res = CliRunner().invoke(main, ["train", "birealnet18", "--dataset", "cifar10", "--stem", "cifar",
                                    "--input-bits", "4", "--epochs", "1", "--quiet"])
    assert res.exit_code != 0 and "cannot take input_bits" in res.output
