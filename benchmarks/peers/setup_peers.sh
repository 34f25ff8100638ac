#!/usr/bin/env bash
# Create the peer-engine virtual environment (.peers-venv in the repo root) with the exact
# versions DESIGN §4 measures against: TensorFlow 2.16.2 + tf-keras (legacy Keras 2, which
# Larq needs), Larq 0.14.0, Larq Compute Engine 0.16.0, Larq Zoo 2.4.0 and ONNX Runtime.
#
# Usage: benchmarks/peers/setup_peers.sh [PYTHON]   (default: python3; must be 3.9-3.11,
#        the versions TensorFlow 2.16 ships wheels for that LCE 0.16 also ships)
# Re-running is safe: pip skips what is already installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${PEERS_VENV:-$ROOT/.peers-venv}"
PY="${1:-python3}"

ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$ver" in
  3.9|3.10|3.11) ;;
  *) echo "setup_peers: Python $ver is not supported by tensorflow==2.16.2 + larq-compute-engine==0.16.0 wheels (need 3.9-3.11)" >&2; exit 2;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# numpy<2: TensorFlow 2.16 and LCE 0.16 are compiled against the NumPy 1.x ABI.
"$VENV/bin/python" -m pip install \
  "tensorflow==2.16.2" "tf-keras==2.16.0" "larq==0.14.0" \
  "larq-compute-engine==0.16.0" "larq-zoo==2.4.0" "protobuf==3.20.3" \
  "numpy<2" onnxruntime

# Optional: tf2onnx + onnx for the ONNX Runtime float peer ("ort-float"). Pinned so pip does not
# drag in NumPy 2 / protobuf 4+, which would break TensorFlow 2.16; a failure here only disables
# that one engine.
if ! "$VENV/bin/python" -m pip install "tf2onnx==1.17.0" "onnx==1.17.0" \
    "numpy<2" "protobuf==3.20.3" "ml_dtypes==0.3.2"; then
  echo "setup_peers: tf2onnx/onnx not installed: engine ort-float unavailable (the others work)" >&2
fi

# Smoke test: everything imports under legacy Keras and LCE's interpreter is present.
TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" - <<'PY'
import tensorflow as tf, tf_keras, larq, larq_zoo, larq_compute_engine as lce, onnxruntime, numpy
from larq_compute_engine import testing  # testing.Interpreter is LCE's own TFLite interpreter
assert hasattr(testing, "Interpreter")
print("peers venv ok: tensorflow", tf.__version__, "tf-keras", tf_keras.__version__,
      "larq", larq.__version__ if hasattr(larq, "__version__") else "?",
      "lce", getattr(lce, "__version__", "?"), "onnxruntime", onnxruntime.__version__,
      "numpy", numpy.__version__)
PY
