"""Bit flips of stored weights: the sites of each kind, flips that keep files valid, the random
and progressive studies on the engine, and the errors for bad requests."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from onebit.robustness import RobustnessError, find_sites, parse_flips, parse_kinds, study
from onebit.robustness.sites import apply_flips, diff_bits, draw
from onebit.runtime import format as fmt


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_sites_count_every_weight_bit_of_each_kind(mnist_model):
    data = _read(mnist_model[1])
    mf = fmt.loads(data)
    binary = find_sites(data, "binary", mf)
    want = sum(op.attrs["out_channels"] * op.attrs["kernel"][0] * op.attrs["kernel"][1] * op.attrs["in_channels"]
               if op.type == "bconv2d" else op.attrs["out_features"] * op.attrs["in_features"]
               for op in mf.ops if op.type in ("bconv2d", "bdense"))
    assert binary.count == want > 0
    thresholds = find_sites(data, "thresholds", mf)
    assert thresholds.count == 32 * sum(mf.tensors[op.tensors["threshold"]].size for op in mf.ops
                                        if "threshold" in op.tensors)
    int8 = find_sites(data, "int8", mf)
    w = np.concatenate([mf.tensors[op.tensors["weight"]].ravel() for op in mf.ops if op.type == "conv2d_u8"])
    onto_minus_128 = sum(int(v == 0) + sum(int(v == -128 + (1 << b)) for b in range(7)) for v in w)
    assert int8.count == 8 * w.size - onto_minus_128


@pytest.mark.parametrize("kind", ["binary", "thresholds", "int8"])
def test_flips_change_exactly_the_drawn_bits_and_keep_the_file_valid(mnist_model, kind):
    data = _read(mnist_model[1])
    sites = find_sites(data, kind)
    order = draw(sites, 50, np.random.default_rng(1))
    flipped, info = apply_flips(data, sites, order, 50)
    assert info["flipped"] == 50
    changed = diff_bits(data, flipped, sites)
    assert len(changed) == 50
    if info["redrawn"] == 0:  # (int8 only may skip a site that a second flip would move onto -128)
        assert sorted(changed) == sorted(sites.locate(order[:50]))
    assert len(flipped) == len(data) and flipped[:64] == data[:64]
    fmt.loads(flipped)  # valid


def test_binary_flips_never_touch_channel_padding(mnist_model):
    data = _read(mnist_model[1])
    mf = fmt.loads(data)
    sites = find_sites(data, "binary", mf)
    for op in mf.ops:
        if op.type == "bconv2d" and op.attrs["in_channels"] % 64:
            t = next(t for t in sites.tensors if t.op == op.name)
            words = t.bits // 64
            last = words % mf.tensors[t.tensor].shape[-1] == mf.tensors[t.tensor].shape[-1] - 1
            assert (t.bits[last] % 64 < op.attrs["in_channels"] % 64).all()


def test_int8_flips_skip_the_value_minus_128(mnist_model):
    data = _read(mnist_model[1])
    mf = fmt.loads(data)
    sites = find_sites(data, "int8", mf)
    for t in sites.tensors:
        u = mf.tensors[t.tensor].ravel().view(np.uint8)
        onto = (u[:, None] ^ (np.uint8(1) << np.arange(8, dtype=np.uint8))) == 0x80
        assert np.array_equal(np.sort(t.bits), np.flatnonzero(~onto))
        assert not np.isin(np.flatnonzero(onto), t.bits).any()


def test_pruned_model_sites_are_the_kept_weights(tmp_path, mnist_model):
    from onebit.convert import export
    from onebit.prune.checkpoint import load_checkpoint
    from onebit.prune.pipeline import prune_checkpoint

    prune_checkpoint(mnist_model[0], granularity="weight", target=0.5, out=tmp_path / "p.pt", val_size=64,
                     limit_test=64, progress=False)
    model, _ = load_checkpoint(tmp_path / "p.pt")
    export(model, tmp_path / "p.onebit", dataset="mnist")
    data = _read(tmp_path / "p.onebit")
    mf = fmt.loads(data)
    sites = find_sites(data, "binary", mf)
    kept = sum(int(m.weight_mask.sum()) if m.weight_mask is not None else m.weight.numel()
               for m in model.modules() if type(m).__name__ in ("BinaryConv2d", "BinaryLinear"))
    assert sites.count == kept
    flipped, _ = apply_flips(data, sites, draw(sites, 200, np.random.default_rng(0)), 200)
    mf2 = fmt.loads(flipped)
    for op in mf.ops:
        if op.type in ("bconv2d", "bdense"):
            a, b = mf.weight(op), mf2.weight(op)
            m = mf.weight_mask(op)
            if m is not None:
                assert not ((a ^ b) & ~m).any()  # pruned positions untouched


def test_random_study_is_seeded_and_nested(mnist_model):
    kw = dict(flips=[1, 20], mode="random", kinds=("binary", "thresholds"), trials=2, limit=200, threads=1)
    a = study(mnist_model[1], "mnist", seed=3, **kw)
    b = study(mnist_model[1], "mnist", seed=3, **kw)
    assert a["rows"] == b["rows"]
    assert [(r["kind"], r["flips"]) for r in a["rows"]] == [("binary", 1), ("binary", 20), ("thresholds", 1),
                                                             ("thresholds", 20)]
    assert all(len(r["trials"]) == 2 and r["min"] <= r["accuracy"] <= r["max"] for r in a["rows"])
    assert 0.0 <= a["clean_accuracy"] <= 1.0 and a["images"] == 200
    from onebit.runtime import Session
    from onebit.data import load

    images, labels = load("mnist", "test")
    assert a["clean_accuracy"] == Session(str(mnist_model[1]), threads=1).evaluate(images[:200], labels[:200])


def test_many_threshold_flips_break_the_model(mnist_model):
    # the sign and high bits of int32 thresholds move them far outside [-K, K]: constant outputs
    rec = study(mnist_model[1], "mnist", [2000], kinds=("thresholds",), trials=1, limit=200, threads=1)
    assert rec["clean_accuracy"] > 0.5
    assert rec["rows"][0]["accuracy"] < rec["clean_accuracy"] - 0.2


def test_progressive_flips_reach_the_file_bit_for_bit(mnist_model):
    from onebit.convert.export import to_bytes
    from onebit.prune.checkpoint import load_checkpoint
    from onebit.robustness import progressive as pbs

    ckpt, path = mnist_model
    rec = study(path, "mnist", [1, 3], mode="progressive", checkpoint=ckpt, attack_batch=64, limit=200, threads=1)
    flips = rec["search"]["flips"]
    assert len(flips) == 3 and len({(f["layer"], f["index"]) for f in flips}) == 3
    assert [r["flips"] for r in rec["rows"]] == [1, 3]
    # the file the study evaluated = the original file with the 3 flipped bits = the export of the flipped model
    net, _ = load_checkpoint(ckpt)
    data = _read(path)
    sites = find_sites(data, "binary")
    patched = pbs.file_flips(to_bytes(net, dataset="mnist"), to_bytes(pbs.apply(net, flips), dataset="mnist"),
                             data, sites, 3)
    assert len(diff_bits(data, patched, sites)) == 3
    assert pbs.tensor_bytes(patched) == pbs.tensor_bytes(to_bytes(pbs.apply(net, flips), dataset="mnist"))
    # each flip raised the attack loss above the clean model's
    x_loss = [f["loss"] for f in flips]
    assert x_loss[-1] >= x_loss[0]


def test_progressive_search_raises_the_loss_more_than_random_flips(mnist_model):
    from onebit.data import load, normalize
    from onebit.prune.checkpoint import load_checkpoint
    from onebit.robustness import progressive as pbs

    net, _ = load_checkpoint(mnist_model[0])
    images, labels = load("mnist", "train")
    x = torch.from_numpy(normalize(np.asarray(images[:64]), "mnist"))
    y = torch.from_numpy(np.asarray(labels[:64], dtype=np.int64))
    with torch.no_grad():
        clean = float(torch.nn.functional.cross_entropy(net(x), y))
    flips = pbs.search(net, x, y, 4)
    assert flips[-1]["loss"] > clean
    rnd, _ = load_checkpoint(mnist_model[0])
    rng = np.random.default_rng(0)
    layers = pbs.binary_layers(rnd)
    for _ in range(4):
        name, m = layers[rng.integers(len(layers))]
        with torch.no_grad():
            m.weight.view(-1)[int(rng.integers(m.weight.numel()))] *= -1
    with torch.no_grad():
        assert float(torch.nn.functional.cross_entropy(rnd(x), y)) < flips[-1]["loss"]


def test_bad_requests_are_clear_errors(mnist_model, tmp_path):
    ckpt, path = mnist_model
    data = _read(path)
    n = find_sites(data, "int8").count
    with pytest.raises(RobustnessError, match=f"{n + 1} flips requested but the model has only {n} int8 bits"):
        study(path, "mnist", [n + 1], kinds=("int8",), limit=10)
    with pytest.raises(RobustnessError, match="unknown kind 'bias'"):
        parse_kinds("bias")
    with pytest.raises(RobustnessError, match="unknown kind 'bias'"):
        find_sites(data, "bias")
    with pytest.raises(RobustnessError, match="non-negative integers"):
        parse_flips("1,x")
    with pytest.raises(RobustnessError, match="must be >= 0"):
        parse_flips("-3")
    with pytest.raises(RobustnessError, match="give --checkpoint"):
        study(path, "mnist", [1], mode="progressive", limit=10)
    with pytest.raises(RobustnessError, match="binary weights only"):
        study(path, "mnist", [1], mode="progressive", kinds=("int8",), checkpoint=ckpt, limit=10)
    with pytest.raises(RobustnessError, match="the model expects"):
        study(path, "cifar10", [1], limit=10)


def test_progressive_with_another_checkpoint_is_a_clear_error(mnist_model, tmp_path):
    from onebit.train import TrainConfig, train

    other = tmp_path / "o.pt"
    train(TrainConfig(model="mnist-small", dataset="mnist", epochs=1, batch_size=64, limit_train=64, limit_test=64,
                      progress=False, device="cpu", threads=1, seed=9, out=str(other)))
    with pytest.raises(RobustnessError, match="not exported from this checkpoint"):
        study(mnist_model[1], "mnist", [1], mode="progressive", checkpoint=other, limit=10)


def test_cli_table_json_and_plot(mnist_model, tmp_path):
    from onebit.cli import main

    r = CliRunner().invoke(main, ["robustness", str(mnist_model[1]), "--dataset", "mnist", "--flips", "1,5",
                                  "--kind", "all", "--trials", "1", "--limit", "100", "--threads", "1",
                                  "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output
    for kind in ("binary", "thresholds", "int8"):
        assert kind in r.output
    rec = json.loads((tmp_path / "o" / "robustness.json").read_text())
    assert {row["kind"] for row in rec["rows"]} == {"binary", "thresholds", "int8"}
    png = (tmp_path / "o" / "robustness.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors(mnist_model):
    from onebit.cli import main

    r = CliRunner().invoke(main, ["robustness", str(mnist_model[1]), "--dataset", "mnist", "--flips", "99999999",
                                  "--quiet"])
    assert r.exit_code == 1 and "flips requested but the model has only" in r.output
    r = CliRunner().invoke(main, ["robustness", str(mnist_model[1]), "--dataset", "mnist", "--flips", "1",
                                  "--kind", "weights"])
    assert r.exit_code == 2 and "weights" in r.output
