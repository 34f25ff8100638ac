"""benchmarks/peers/larq_agreement.py on a reference directory written here with h5py (Larq's
layout) and the imported PyTorch module standing in for Larq's forward (no TensorFlow): both
exports run in the engine in a torch-free process, the float-boundary engine equals the module to
the tolerance, the integer engine follows it, a model that does not export is recorded with its
layer and reason, and the layer-by-layer walk names Larq's layers and the signs it checks."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("h5py")

import larq_h5_writer as K  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
BENCH = REPO / "benchmarks" / "peers" / "larq_agreement.py"
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _model(path, seed, prelu=False):
    """Conv2D 3x3 stride 2 'same' on 16x16 (padded after the input only) -> BN [-> PReLU per
    element: no .onebit op] -> the writer's binary tail (QuantConv2D with one-padding, BN, MaxPool,
    Flatten, QuantDense, BN)."""
    rng = np.random.default_rng(seed)
    L = [K.input_layer("in", (16, 16, 3)),
         K.layer("Conv2D", "conv", ["in"], filters=16, kernel_size=[3, 3], strides=[2, 2], padding="same",
                 use_bias=True, activation="linear"),
         K.layer("BatchNormalization", "bn", ["conv"], axis=[3], epsilon=1e-3)]
    W = {"conv": [("kernel", rng.normal(0, 0.5, (3, 3, 3, 16))), ("bias", rng.normal(0, 0.1, 16))],
         "bn": K.bn_weights(rng, 16)}
    last = "bn"
    if prelu:
        L.append(K.layer("PReLU", "prelu", ["bn"], shared_axes=None))
        W["prelu"] = [("alpha", rng.uniform(0, 0.3, (8, 8, 16)))]
        last = "prelu"
    tail, tw = K.binary_tail(last, rng, 8, 16, pad_values=1.0)
    return K.write(path, K.functional(L + tail, "in", "bn3"), {**W, **tw})


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory):
    """larq_zoo_reference.py's layout, with the imported module's forward as the reference."""
    from onebit.convert.larq import from_larq

    d = tmp_path_factory.mktemp("larq-ref")
    u8 = np.random.default_rng(0).integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)
    x = ((u8 / 255.0 - MEAN) / STD).astype(np.float32)
    np.savez(d / "images.npz", uint8=u8, input=x)
    manifest = {"tensorflow": None, "larq": None, "larq_zoo": None, "images": len(u8), "seed": 0, "models": {}}
    for name, prelu in (("Chain", False), ("ChainPReLU", True)):
        h5 = _model(d / f"{name}.h5", 1, prelu)
        m = from_larq(h5)
        with torch.no_grad():
            np.savez(d / f"{name}.npz", logits=m.forward_nhwc(torch.from_numpy(x)).numpy())
            values = {m.input_key: torch.from_numpy(x[:1]).permute(0, 3, 1, 2)}
            for key, ins in m.nodes:
                values[key] = m.layers[key](*[values[i] for i in ins])
        layers = {m.keras_names.get(k, k): (v.permute(0, 2, 3, 1) if v.dim() == 4 else v).numpy()
                  for k, v in values.items() if k != m.input_key}
        np.savez(d / f"{name}.layers.npz", __input__=x[:1], **layers)
        manifest["models"][name] = {"h5": f"{name}.h5", "logits": f"{name}.npz", "layer_outputs": f"{name}.layers.npz"}
    manifest["models"]["NotBuilt"] = {"error": "ValueError: no such model"}
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


@pytest.fixture(scope="module")
def record(ref_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "agreement.json"
    r = subprocess.run([sys.executable, str(BENCH), "--ref", str(ref_dir), "--json", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())[0]


def test_agreement_record_is_torch_free_and_names_the_machine(record):
    assert record["torch_imported"] is False
    assert record["images"] == 48 and record["tolerance"] == 1e-4
    for k in ("cpu", "commit", "loadavg", "isa", "threads"):
        assert record[k], k
    assert [m["model"] for m in record["models"]] == ["Chain", "ChainPReLU", "NotBuilt"]


def test_agreement_float_boundary_equals_the_module_and_integer_follows(record):
    rec = record["models"][0]
    fb, it = rec["float_boundary"], rec["integer"]
    assert fb["within_tolerance"] and fb["images_within_tolerance"] == 1.0 and fb["target_met"]
    assert fb["rel_diff"] <= 1e-4 and fb["correlation"] > 0.999999
    assert it["rel_diff"] > fb["rel_diff"]  # int8 rounding of the first layer
    assert it["correlation"] > 0.9 and it["centered_top1_agreement"] > 0.5
    assert rec["distinct_centered_top1"] > 1


def test_agreement_model_that_does_not_export_names_the_layer(record):
    rec = record["models"][1]
    for mode in ("float_boundary", "integer"):
        err = rec[mode]["export_error"]
        assert "'prelu'" in err and "no .onebit op" in err, err
        assert rec[mode]["target_met"] is False
    assert "no such model" in record["models"][2]["error"]


def test_agreement_layer_walk_names_larq_layers_and_signs(ref_dir, tmp_path):
    sys.path.insert(0, str(BENCH.parent))
    import larq_agreement as A

    from onebit.runtime import Session

    h5 = ref_dir / "Chain.h5"
    layers = dict(np.load(ref_dir / "Chain.layers.npz"))
    u8 = np.load(ref_dir / "images.npz")["uint8"][:1]
    graph = A._keras_graph(h5)
    assert graph["conv"] == ("Conv2D", ["bn"]) and graph["bn2"][1] == ["pool"]
    walks = {}
    for mode, flags in A.MODES:
        dest = tmp_path / f"{mode}.onebit"
        assert A.export(h5, dest, *flags) is None
        walks[mode] = A.layer_walk(Session(dest, threads=1), u8, layers, graph, A.DEPART[mode])
    fb, it = walks["float_boundary"], walks["integer"]
    # the first conv's value stands for Larq's BatchNormalization after it (folded)
    assert fb["layers"][0]["layer"] == "bn" and fb["layers"][0]["rel_diff"] <= 1e-5
    signs = [w for w in fb["layers"] if "flips" in w]
    assert signs and all(w["flips"] == 0 for w in signs) and fb["first_departure"] is None
    # int8 rounding of the first layer: the integer engine departs there, within a few percent
    first = it["first_departure"]
    assert first is not None and it["layers"][0]["layer"] == "bn"
    assert 1e-5 < it["layers"][0]["rel_diff"] < 0.05
    # a sign the int8 rounding flips was near zero in the reference
    for w in it["layers"]:
        if w.get("flips"):
            assert w["flip_max_rel"] < 0.1
