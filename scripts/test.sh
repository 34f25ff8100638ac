#!/usr/bin/env bash
# Fresh machine -> the whole test suite: set up .venv, run pytest, then the ARM NEON kernels
# cross-built and run under qemu-user (scripts/test-arm.sh), then the Python package built for
# aarch64 and its runtime tests run on an emulated Debian arm64 tree (scripts/test-arm-python.sh).
# With arguments, only pytest runs, with those arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
.venv/bin/python -m pytest -q
bash scripts/test-arm.sh
bash scripts/test-arm-python.sh
