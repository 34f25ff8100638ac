#!/usr/bin/env bash
# Fresh machine -> the whole test suite: set up .venv, then run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec .venv/bin/python -m pytest -q "$@"
