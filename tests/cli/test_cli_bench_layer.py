"""``onebit bench --layer``: spec parsing, bit-MAC count, one tiny timed run and its records."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from onebit.bench.layers import LayerSpec, layer_runner, layer_workload, parse_layer
from onebit.cli.bench import command
from onebit.runtime import reference


def test_bench_parse_layer_spec():
    assert parse_layer("56x56x64-64") == LayerSpec(56, 56, 64, 64, 3, 1)
    assert parse_layer("7x9x65-17,k=5,s=2") == LayerSpec(7, 9, 65, 17, 5, 2)
    assert parse_layer("56x56x64-64").bitmacs == 115_605_504  # the reference layers' 115.6 M
    assert parse_layer("7x7x512-512").bitmacs == 115_605_504
    for bad in ("56x56x64", "56x56x64-64,k=4", "0x5x5-5", "5x5x5-5,q=1"):
        with pytest.raises(ValueError):
            parse_layer(bad)


@pytest.mark.parametrize("pipeline", ["bits-bits", "bits-int8", "float-float"])
def test_bench_pipeline_computes_the_layer(pipeline):
    # The timed callable is the real layer: compare its result with the NumPy oracle.
    spec = LayerSpec(5, 6, 70, 9, 3, 2)
    work = layer_workload(spec, seed=1)
    got = layer_runner(spec, pipeline, "scalar", 1, work)()
    conv = dict(in_channels=70, stride=2, padding=1)
    if pipeline == "bits-bits":
        want = reference.bconv2d(work["x_bits"], work["w_bits"], output="bits", threshold=work["threshold"],
                                 direction=work["direction"], **conv)
    elif pipeline == "bits-int8":
        want = reference.bconv2d(work["x_bits"], work["w_bits"], output="int8", multiplier=work["multiplier"],
                                 bias=work["bias"], shift=work["shift"], **conv)
    else:
        want = reference.bconv2d(work["x_bits"], work["w_bits"], output="float", scale=work["scale"],
                                 bias=work["fbias"], **conv)
    assert (got == want).all()


def test_bench_cli_layer_json(tmp_path):
    out = tmp_path / "r.json"
    res = CliRunner().invoke(command, ["--layer", "4x4x64-8", "--isa", "scalar", "--threads", "1",
                                       "--repeats", "2", "--json", str(out)])
    assert res.exit_code == 0, res.output
    recs = json.loads(out.read_text())
    assert [r["pipeline"] for r in recs] == ["bits-bits", "bits-int8", "float-float"]
    keys = {"layer", "kernel", "stride", "engine", "isa", "threads", "pipeline", "median_ms", "bitmacs",
            "gbitmacs_per_s", "peak_fraction", "commit", "cpu"}
    assert all(keys <= set(r) for r in recs)
    assert recs[0]["layer"] == "4x4x64-8" and recs[0]["engine"] == "onebit" and recs[0]["bitmacs"] == 4 * 4 * 8 * 9 * 64


def test_bench_cli_bad_arguments():
    runner = CliRunner()
    assert runner.invoke(command, []).exit_code != 0
    res = runner.invoke(command, ["--layer", "bad"])
    assert res.exit_code != 0 and "HxWxCin-Cout" in res.output
    res = runner.invoke(command, ["--layer", "4x4x64-8", "--isa", "sse9"])
    assert res.exit_code != 0 and "sse9" in res.output
