"""``onebit demo`` on a small MNIST subset (the full demo trains on all 60000 images)."""
import json

import pytest
from click.testing import CliRunner

from onebit.cli import main
from onebit.cli import demo

pytestmark = pytest.mark.usefixtures("datasets_root")


def test_demo_prints_summary_and_accuracy_and_writes_json(tmp_path):
    js = tmp_path / "demo.json"
    r = CliRunner().invoke(main, ["demo", "--epochs", "1", "--limit-train", "256", "--limit-test", "128",
                                  "--threads", "1", "--quiet", "--workdir", str(tmp_path / "w"),
                                  "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert "[summary]" in r.output and "test accuracy" in r.output
    assert (tmp_path / "w" / "mnist-small.pt").is_file()
    data = json.loads(js.read_text())
    assert {"train", "summary", "total_seconds", "options"} <= set(data)
    assert data["train"]["limit_train"] == 256 and len(data["train"]["history"]) == 1


def test_demo_runs_extra_steps_in_order(tmp_path):
    seen = []

    def extra(state):
        seen.append(state.model is not None and state.checkpoint.is_file())
        state.results["extra"] = {"ok": True}

    opts = demo.DemoOptions(epochs=1, limit_train=128, limit_test=64, threads=1, progress=False,
                            workdir=str(tmp_path))
    out = demo.run_demo(opts, echo=lambda s: None, steps=[demo.step_train, extra])
    assert seen == [True] and out["extra"] == {"ok": True}
