"""``onebit prune`` (sensitivity, flip counts, fine-tuning, plots) and the prune -> export -> eval chain."""
import json

import pytest
import torch
from click.testing import CliRunner

from onebit.cli import main
from onebit.models import randomize_bn
from onebit.prune.checkpoint import load_checkpoint


SMALL = ["--limit-train", "128", "--limit-test", "200", "--val-size", "200", "--batch-size", "64", "--quiet"]


def test_cli_prune_channel_sensitivity_smoke(tmp_path, ckpt):
    out, js, plots = tmp_path / "pruned.pt", tmp_path / "r.json", tmp_path / "plots"
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--method", "latent", "--granularity", "channel",
                                    "--target-bops", "30%", "--sensitivity", "--sensitivity-solver", "dp",
                                    "--finetune-epochs", "1",
                                    "-o", str(out), "--json", str(js), "--plot", str(plots), *SMALL])
    assert res.exit_code == 0, res.output
    assert "fewer" in res.output
    rec = json.loads(js.read_text())
    assert rec["pruned"]["reduction"] >= 0.3
    assert rec["allocation_result"]["solver"] == "dp"
    assert set(rec["sensitivity"]["accuracy"]) == {"conv1", "conv2", "fc1"}
    assert (plots / "sensitivity.png").stat().st_size > 0 and (plots / "pareto.png").stat().st_size > 0
    model, saved = load_checkpoint(out)
    assert saved["prune_info"]["channels"]
    assert model.conv1.out_channels < 16


def test_cli_prune_flip_word_smoke(tmp_path, ckpt):
    out = tmp_path / "pruned.pt"
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--method", "flip", "--granularity", "word",
                                    "--target-bops", "0.2", "--flip-steps", "2", "--iterations", "2",
                                    "--finetune-epochs", "1", "--max-ratio", "0.5", "-o", str(out), *SMALL])
    assert res.exit_code == 0, res.output
    model, saved = load_checkpoint(out)
    assert saved["prune_info"]["reduction"] >= 0.2
    assert model.conv1.weight_mask is not None


def test_cli_prune_rejects_bad_target(tmp_path, ckpt):
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--target-bops", "1.5", "-o", str(tmp_path / "x.pt")])
    assert res.exit_code != 0
    assert "fraction" in res.output


def test_cli_prune_flip_order_rare(tmp_path, ckpt):
    out, js = tmp_path / "pruned.pt", tmp_path / "r.json"
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--method", "flip", "--flip-order", "rare",
                                    "--flip-steps", "2", "--target-bops", "0.3", "-o", str(out),
                                    "--json", str(js), *SMALL])
    assert res.exit_code == 0, res.output
    rec = json.loads(js.read_text())
    assert rec["flip_order"] == "rare" and rec["pruned"]["reduction"] >= 0.3
    assert load_checkpoint(out)[1]["prune_info"]["flip_order"] == "rare"
    bad = CliRunner().invoke(main, ["prune", str(ckpt), "--method", "flip", "--flip-order", "often",
                                    "-o", str(out), *SMALL])
    assert bad.exit_code == 2 and "often" in bad.output


@pytest.mark.parametrize("granularity", ["weight", "word", "block", "channel"])
def test_cli_prune_export_eval_mnist_small(granularity, tmp_path, datasets_root):
    import onebit.models as om
    from onebit.train import save_checkpoint

    torch.manual_seed(0)
    model = randomize_bn(om.create("mnist-small"), 0, input_shape=(1, 28, 28))
    base = tmp_path / "base.pt"
    save_checkpoint(base, {"model_config": dict(model.onebit_config), "state_dict": model.state_dict(),
                           "dataset": "mnist", "train_config": {}, "metrics": {}, "epoch": 0,
                           "optimizer": None, "scheduler": None, "onebit_version": "0"})
    ck, out, js = tmp_path / "pruned.pt", tmp_path / "pruned.onebit", tmp_path / "eval.json"
    r = CliRunner().invoke(main, ["prune", str(base), "--granularity", granularity, "--target-bops", "40%",
                                  "--limit-test", "64", "--val-size", "64", "--limit-train", "64", "--quiet",
                                  "--threads", "1", "-o", str(ck)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["export", str(ck), "-o", str(out), "--json", str(tmp_path / "ops.json")])
    assert r.exit_code == 0, r.output
    ops = json.loads((tmp_path / "ops.json").read_text())
    info = torch.load(ck, map_location="cpu", weights_only=True)["prune_info"]
    # the file's kept bit-MACs are the pruner's count (padding taps counted, batch 1)
    assert ops["totals"]["bit_macs"] == info["bops"] <= 0.6 * info["base_bops"]
    assert (ops["totals"]["pruned_weights"] > 0) == (granularity != "channel")
    r = CliRunner().invoke(main, ["eval", str(out), "--dataset", "mnist", "--limit", "64", "--quiet",
                                  "--threads", "1", "--simulate", "--json", str(js)])
    assert r.exit_code == 0, r.output
    rec = json.loads(js.read_text())
    assert rec["n"] == 64 and rec["argmax_agreement"] == 1.0
