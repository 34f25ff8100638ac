"""End to end on real MNIST: a few training steps, export (CLI), engine on every ISA == simulation,
`onebit eval` accuracy == simulated accuracy."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytestmark = pytest.mark.usefixtures("datasets_root")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from onebit.train import TrainConfig, train

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("e2e")
    cfg = TrainConfig(model="mnist-small", dataset="mnist", epochs=1, batch_size=64, lr=2e-3,
                      out=str(d / "m.pt"), seed=0, limit_train=512, limit_test=256, progress=False,
                      threads=1, device="cpu")
    train(cfg)
    return d


def test_end_to_end_mnist_export_run_equals_simulation(trained):
    from onebit.cli import main
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.data import load
    from onebit.runtime import Session, capabilities

    out = trained / "m.onebit"
    r = CliRunner().invoke(main, ["export", str(trained / "m.pt"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "bconv2d" in r.output and out.stat().st_size > 0
    images, labels = load("mnist", split="test")
    images, labels = images[:200], labels[:200]
    sim = simulate(str(out))
    sim_pred = sim(torch.from_numpy(images.copy())).argmax(1).numpy()
    for isa in capabilities()["supported"]:
        sess = Session(out, isa=isa, threads=2)
        engine_vs_simulation(sess, sim, images[:16])
        assert np.array_equal(sess.predict(images, 64), sim_pred), isa

    j = trained / "eval.json"
    r = CliRunner().invoke(main, ["eval", str(out), "--dataset", "mnist", "--limit", "200", "--quiet",
                                  "--json", str(j), "--simulate"])
    assert r.exit_code == 0, r.output
    rec = json.loads(j.read_text())
    assert {"model", "dataset", "split", "n", "accuracy", "isa"} <= set(rec)
    assert rec["n"] == 200 and rec["argmax_agreement"] == 1.0
    assert rec["accuracy"] == pytest.approx(float((sim_pred == labels).mean()))


def test_export_cli_reports_conversion_error(tmp_path):
    from onebit.cli import main

    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    r = CliRunner().invoke(main, ["export", str(bad), "-o", str(tmp_path / "x.onebit")])
    assert r.exit_code != 0 and "Error" in r.output


def test_eval_cli_rejects_malformed_model(tmp_path):
    from onebit.cli import main

    p = tmp_path / "bad.onebit"
    p.write_bytes(b"\x10" + b"\x00" * 7 + b"{}")
    r = CliRunner().invoke(main, ["eval", str(p), "--dataset", "mnist"])
    assert r.exit_code != 0 and "truncated" in r.output


def test_demo_steps_export_eval_latency(trained):
    from onebit.cli.demo import ENGINE_STEPS, DemoOptions, DemoState
    from onebit.train import load_checkpoint

    model, ckpt = load_checkpoint(trained / "m.pt")
    lines = []
    state = DemoState(options=DemoOptions(limit_test=300), workdir=trained, echo=lines.append, model=model)
    state.results["train"] = {"test_accuracy": 0.5}
    for step in ENGINE_STEPS:
        step(state)
    r = state.results
    assert r["engine_eval"]["argmax_agreement"] == 1.0 and r["engine_eval"]["n"] == 300
    assert r["engine_eval"]["engine_accuracy"] == r["engine_eval"]["simulation_accuracy"]
    assert r["latency"]["onebit_ms"] > 0 and r["export"]["bytes"] > 0
    assert "speedup vs float twin" in lines[-1]


def test_export_cli_qat_steps(trained):
    # onebit export --qat-steps: fine-tune on the training split, then export; the fine-tuned
    # checkpoint is saved on request and the exported file runs == its simulation
    from onebit.cli import main
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.data import load
    from onebit.runtime import Session
    from onebit.train import load_checkpoint

    out, ck = trained / "q.onebit", trained / "q.pt"
    r = CliRunner().invoke(main, ["export", str(trained / "m.pt"), "-o", str(out), "--qat-steps", "3",
                                  "--qat-lr", "1e-4", "--qat-batch-size", "32", "--qat-distill", "1", "--qat-checkpoint", str(ck),
                                  "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "[qat] 3 steps" in r.output
    model, ckpt = load_checkpoint(ck)
    assert ckpt["qat"]["steps"] == 3 and len(ckpt["qat"]["losses"]) == 3 and ckpt["qat"]["distill"] == 1.0
    images, _ = load("mnist", split="test")
    engine_vs_simulation(Session(out), simulate(str(out)), images[:8])
    r = CliRunner().invoke(main, ["export", str(trained / "m.pt"), "-o", str(out), "--qat-checkpoint", str(ck)])
    assert r.exit_code != 0 and "--qat-steps" in r.output


def test_verify_cli_float_simulation_engine(trained, tmp_path):
    from onebit.cli import main

    j = tmp_path / "verify.json"
    r = CliRunner().invoke(main, ["verify", str(trained / "m.pt"), "--limit", "100", "--exact", "4", "--json", str(j)])
    assert r.exit_code == 0, r.output
    rec = json.loads(j.read_text())
    assert rec["n"] == 100 and rec["engine"]
    for isa, e in rec["engine"].items():
        assert e["argmax_agreement_with_simulation"] == 1.0, isa
        assert e["values_equal"]["images"] == 4 and e["values_equal"]["max_abs_diff"] == 0.0, isa
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "missing.pt")])
    assert r.exit_code != 0 and "does not exist" in r.output
