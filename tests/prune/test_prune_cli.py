import json

from click.testing import CliRunner

from onebit.cli import main
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
