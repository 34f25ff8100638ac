#!/usr/bin/env bash
# Creates .venv (if missing) and installs onebit with everything (runtime, training extra, test
# extras). Idempotent.
# torch is installed first, pinned to the CPU build 2.13.0 (an unpinned torch pulls a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q "scikit-build-core>=0.10" "nanobind>=2.4" "nlohmann-json>=3.11" ninja cmake
.venv/bin/python -m pip install -q --no-build-isolation -e ".[train,dev]"
# Fashion-MNIST ships as a Debian package; install it when we may (root), never fail on it.
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 || \
    echo "note: could not install dataset-fashion-mnist; its tests will be skipped" >&2
fi
