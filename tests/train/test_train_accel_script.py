"""``scripts/train-accel.sh --tiny``: the accelerator study's whole pipeline on a few hundred
CIFAR-10 images (three concurrent trainings, pruning, fine-tune, export, engine eval)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train-accel.sh"


def _env():
    env = dict(os.environ)
    env["ONEBIT_PYTHON"] = sys.executable
    return env


@pytest.mark.parametrize("args,message", [([], "usage"), (["out", "--budget-s", "x"], "--budget-s must be"),
                                          (["out", "--budget-s", "5"], "--budget-s must be"),
                                          (["out", "--fast"], "unknown option --fast")])
def test_script_rejects_bad_arguments(tmp_path, args, message):
    r = subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert message in r.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal without a GPU")
def test_script_full_run_needs_a_gpu(tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "o")], env=_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0
    assert "no CUDA device visible to torch" in r.stderr
    assert (tmp_path / "o" / "device.json").is_file()  # what the machine has is still recorded


@pytest.mark.slow
def test_script_tiny_writes_every_record(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run(["bash", str(SCRIPT), str(out), "--tiny"], env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    device = json.loads((out / "device.json").read_text())
    assert "gpu" in device and "torch" in device
    summary = json.loads((out / "summary.json").read_text())
    rows = {row["name"]: row for row in summary["runs"]}
    assert set(rows) == {"cifar-binarynet", "cifar-binarynet-pruned", "birealnet18-float", "birealnet18-clip"}
    for name, row in rows.items():
        assert row["trained"], f"{name} did not train (logs in {out / 'logs'})"
        assert 1 <= row["epochs"] == len(row["per_epoch_accuracy"])
        assert 0.0 <= row["engine_accuracy"] <= 1.0 and row["engine_images"] == 256
        assert (out / f"{name}.pt").is_file() and (out / f"{name}.onebit").is_file()
        train_rec = json.loads((out / f"{name}.train.json").read_text())
        assert train_rec["environment"]["budget"]["epochs"] == row["epochs"]
    assert rows["birealnet18-clip"]["clip_block"] and not rows["birealnet18-float"]["clip_block"]
    assert rows["cifar-binarynet-pruned"]["bops"]["reduction"] >= 0.4
    pruned = json.loads((out / "cifar-binarynet-pruned.train.json").read_text())
    assert pruned["environment"]["init"]["prune_info"]["channels"]
