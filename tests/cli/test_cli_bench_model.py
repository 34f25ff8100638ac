"""bench_model records (no timing assertions) and the `onebit bench MODEL` hook."""
import json

import pytest
from click.testing import CliRunner

import onebit.convert as cv
from onebit.bench.model import bench_model

from tiny_models import MNIST_SPEC, tiny_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("bench") / "tiny.onebit"
    cv.export(tiny_model(0), p, input_spec=MNIST_SPEC)
    return p


def test_bench_model_records(model_file):
    lines = []
    recs = bench_model(model_file, threads=[1, 2], vs=(), repeats=3, warmup=1, echo=lines.append)
    assert [(r["engine"], r["threads"]) for r in recs] == [("onebit", 1), ("onebit", 2)]
    for r in recs:
        assert {"model", "engine", "isa", "threads", "batch", "median_ms", "commit", "cpu"} <= set(r)
        assert r["median_ms"] > 0 and r["ops_sum_ms"] > 0
    assert "x onebit" in lines[-1]


def test_bench_model_rejects_unknown_peer(model_file):
    with pytest.raises(ValueError, match="unknown peer"):
        bench_model(model_file, vs=("tvm",), echo=lambda s: None)


def test_bench_cli_model_mode(model_file, tmp_path):
    from onebit.cli import main

    j = tmp_path / "b.json"
    r = CliRunner().invoke(main, ["bench", str(model_file), "--threads", "1", "--repeats", "3", "--json", str(j)])
    assert r.exit_code == 0, r.output
    recs = json.loads(j.read_text())
    assert recs and all(rec["engine"] in ("onebit",) for rec in recs)  # no peer build of this model


def test_bench_cli_model_batch_and_vs(model_file, tmp_path):
    from onebit.cli import main

    j = tmp_path / "b.json"
    r = CliRunner().invoke(main, ["bench", str(model_file), "--threads", "1", "--repeats", "2", "--batch", "3",
                                  "--vs", "none", "--isa", "scalar", "--json", str(j)])
    assert r.exit_code == 0, r.output
    recs = json.loads(j.read_text())
    assert [(rec["engine"], rec["isa"], rec["batch"]) for rec in recs] == [("onebit", "scalar", 3)]


@pytest.mark.parametrize("args, message", [
    (["--vs", "tvm"], "peer 'tvm' is not one of"),
    (["--batch", "0"], "--batch"),
])
def test_bench_cli_model_bad_options(model_file, args, message):
    from onebit.cli import main

    r = CliRunner().invoke(main, ["bench", str(model_file), "--repeats", "1", *args])
    assert r.exit_code != 0 and message in r.output


def test_bench_cli_batch_rejected_for_layers():
    from onebit.cli import main

    r = CliRunner().invoke(main, ["bench", "--layer", "7x7x64-64", "--batch", "2"])
    assert r.exit_code != 0 and "apply to a MODEL benchmark" in r.output


def test_bench_model_with_baseline_interleaved(model_file, tmp_path):
    from tiny_models import pruned

    p = cv.export(pruned(tiny_model(0), "block", 0.4, input_size=(1, 28, 28)), tmp_path / "p.onebit",
                  input_spec=MNIST_SPEC)
    lines = []
    recs = bench_model(p, threads=[1], vs=(), repeats=3, warmup=1, echo=lines.append, baseline=model_file,
                       isas=["scalar"])
    assert [(r["role"], r["threads"], r["isa"]) for r in recs] == [("model", 1, "scalar"), ("baseline", 1, "scalar")]
    m, b = recs
    assert m["file"] == str(p) and b["file"] == str(model_file)
    assert 0 < m["min_ms"] <= m["median_ms"] and 0 < b["min_ms"] <= b["median_ms"]
    assert m["x_baseline_median"] == m["median_ms"] / b["median_ms"]
    assert m["x_baseline_min"] == m["min_ms"] / b["min_ms"]
    assert b["pruned_weights"] == 0 < m["pruned_weights"] and m["x_baseline_bit_macs"] <= 0.6
    assert "x baseline (median)" in lines[-1]


def test_bench_cli_baseline(model_file, tmp_path):
    from onebit.cli import main

    j = tmp_path / "b.json"
    r = CliRunner().invoke(main, ["bench", str(model_file), "--baseline", str(model_file), "--threads", "1",
                                  "--isa", "scalar", "--repeats", "2", "--vs", "none", "--json", str(j)])
    assert r.exit_code == 0, r.output
    recs = json.loads(j.read_text())
    assert [rec["role"] for rec in recs] == ["model", "baseline"] and "x_baseline_median" in recs[0]
    r = CliRunner().invoke(main, ["bench", "--layer", "7x7x64-64", "--baseline", str(model_file)])
    assert r.exit_code != 0 and "apply to a MODEL benchmark" in r.output
