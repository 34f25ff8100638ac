"""CLI: onebit prune --channel-multiple (needs channel_multiple in onebit.prune.pipeline.prune_checkpoint)."""
import json

import pytest
from click.testing import CliRunner

from onebit.cli import main
from onebit.prune.checkpoint import load_checkpoint


SMALL = ["--limit-train", "64", "--limit-test", "100", "--val-size", "100", "--batch-size", "64", "--quiet"]


def test_cli_prune_channel_multiple(tmp_path, ckpt):
    # mnist-small width 0.25: conv1 16, conv2 16, fc1 32 channels; multiples of 8
    out, js = tmp_path / "p.pt", tmp_path / "r.json"
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--granularity", "channel", "--channel-multiple", "8",
                                    "--target-bops", "30%", "-o", str(out), "--json", str(js), *SMALL])
    assert res.exit_code == 0, res.output
    rec = json.loads(js.read_text())
    assert rec["pruned"]["reduction"] >= 0.3
    assert rec["budget"]["channel_multiple"] == 8
    assert rec["pruned"]["channels"] and all(k % 8 == 0 for k in rec["pruned"]["channels"].values())
    model, saved = load_checkpoint(out)
    assert saved["prune_info"]["channel_multiple"] == 8
    for name in ("conv1", "conv2", "fc1"):
        n = getattr(model, name).weight.shape[0]
        assert n % 8 == 0 and n in (8, 16, 24, 32)


@pytest.mark.parametrize("granularity", ["weight", "word", "block"])
def test_cli_prune_channel_multiple_needs_channel_granularity(tmp_path, ckpt, granularity):
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--granularity", granularity, "--channel-multiple", "64",
                                    "-o", str(tmp_path / "x.pt"), *SMALL])
    assert res.exit_code != 0
    assert "--channel-multiple 64 needs --granularity channel" in res.output
    assert not (tmp_path / "x.pt").exists()


def test_cli_prune_channel_multiple_rejects_zero(tmp_path, ckpt):
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--granularity", "channel", "--channel-multiple", "0",
                                    "-o", str(tmp_path / "x.pt"), *SMALL])
    assert res.exit_code != 0
    assert "--channel-multiple" in res.output


def test_cli_prune_channel_multiple_sensitivity(tmp_path, ckpt):
    js = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["prune", str(ckpt), "--granularity", "channel", "--channel-multiple", "8",
                                    "--sensitivity", "--target-bops", "0.3", "-o", str(tmp_path / "p.pt"),
                                    "--json", str(js), *SMALL])
    assert res.exit_code == 0, res.output
    rec = json.loads(js.read_text())
    assert rec["sensitivity"]["channel_multiple"] == 8
    assert rec["pruned"]["reduction"] >= 0.3
    assert all(k % 8 == 0 for k in rec["pruned"]["channels"].values())
