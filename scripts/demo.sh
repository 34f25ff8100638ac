#!/usr/bin/env bash
# Fresh machine -> the onebit demo: set up .venv, then run `onebit demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec .venv/bin/onebit demo "$@"
