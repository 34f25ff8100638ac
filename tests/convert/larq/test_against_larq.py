"""The importer against Larq itself: a Larq model built and saved by TensorFlow in ``.peers-venv``
(benchmarks/peers/setup_peers.sh), imported here without TensorFlow, gives Larq's logits.
Skipped (visibly) where ``.peers-venv`` does not exist."""
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("h5py")

REPO = Path(__file__).resolve().parents[3]
PEERS_PY = REPO / ".peers-venv" / "bin" / "python"
pytestmark = pytest.mark.skipif(not PEERS_PY.exists(),
                                reason=".peers-venv absent (benchmarks/peers/setup_peers.sh): no TensorFlow/Larq to compare with")

SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, larq as lq
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    L = tf.keras.layers
    x = L.Input((15, 14, 3))
    y = L.Conv2D(16, 3, strides=2, padding="same")(x)
    y = L.BatchNormalization()(y)
    z = lq.layers.QuantConv2D(16, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                              kernel_quantizer="ste_sign", use_bias=False)(y)
    z = L.BatchNormalization()(z)
    y = L.Add()([y, z])
    z = lq.layers.QuantDepthwiseConv2D(3, strides=2, padding="same", input_quantizer="approx_sign",
                                      depthwise_quantizer="ste_sign", use_bias=False)(y)
    z = lq.layers.QuantConv2D(24, 1, input_quantizer="swish_sign", kernel_quantizer="magnitude_aware_sign")(z)
    y = L.Concatenate()([z, L.MaxPool2D(3, 2, padding="same")(y)])
    y = L.PReLU(shared_axes=[1, 2])(y)
    y = L.AveragePooling2D(2, padding="same")(y)
    y = L.Flatten()(y)
    y = lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(y)
    m = tf.keras.Model(x, y)
    for layer in m.layers:
        ws = [w + rng.normal(0, 0.3, w.shape).astype(np.float32) if w.ndim == 1 else w for w in layer.get_weights()]
        if isinstance(layer, L.BatchNormalization):
            ws[-1] = np.abs(ws[-1]) + 0.5
        layer.set_weights(ws)
    out = sys.argv[1]
    m.save(out + "/m.h5")
    xs = rng.normal(0, 1, (8, 15, 14, 3)).astype(np.float32)
    np.savez(out + "/ref.npz", x=xs, y=m(xs, training=False).numpy())
""")


def test_larq_model_equals_larq_forward(tmp_path):
    from onebit.convert.larq import from_larq

    r = subprocess.run([str(PEERS_PY), "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = np.load(tmp_path / "ref.npz")
    m = from_larq(tmp_path / "m.h5")
    with torch.no_grad():
        got = m.forward_nhwc(torch.from_numpy(ref["x"])).numpy()
    scale = np.abs(ref["y"]).max()
    assert np.abs(got - ref["y"]).max() <= 1e-4 * scale, (np.abs(got - ref["y"]).max(), scale)


ZOO_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, larq_zoo
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    m = larq_zoo.sota.QuickNetSmall(weights=None)
    for layer in m.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            draw = {"gamma": lambda s: rng.uniform(0.5, 1.5, s), "beta": lambda s: rng.normal(0, 0.3, s),
                    "moving_mean": lambda s: rng.normal(0, 0.3, s), "moving_variance": lambda s: rng.uniform(0.5, 2, s)}
            layer.set_weights([draw[w.name.rsplit("/", 1)[-1].split(":")[0]](tuple(w.shape)) for w in layer.weights])
    out = sys.argv[1]
    m.save_weights(out + "/w.h5")
    logits = tf.keras.Model(m.input, m.layers[-1].input)
    xs = rng.normal(0, 1, (2, 224, 224, 3)).astype(np.float32)
    np.savez(out + "/ref.npz", x=xs, y=logits(xs, training=False).numpy())
""")


def test_larq_zoo_weights_only_file_with_named_architecture(tmp_path):
    from onebit.convert.larq import from_larq
    from onebit.convert.larq.check import strip_softmax

    r = subprocess.run([str(PEERS_PY), "-c", ZOO_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = np.load(tmp_path / "ref.npz")
    m = from_larq(tmp_path / "w.h5", larq_zoo="QuickNetSmall")
    assert strip_softmax(m)
    with torch.no_grad():
        got = m.forward_nhwc(torch.from_numpy(ref["x"])).numpy()
    scale = np.abs(ref["y"]).max()
    # per image: a pre-activation within float rounding of zero may binarize differently
    within = (np.abs(got - ref["y"]).max(1) <= 1e-4 * scale).mean()
    assert within >= 0.5, (np.abs(got - ref["y"]).max(1), scale)
