# Sourced by the run scripts: points onebit at the shared offline datasets when they exist.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${ONEBIT_DATA:-}" ] && [ -d "$_root/../shared/datasets" ]; then
  export ONEBIT_DATA="$(cd "$_root/../shared/datasets" && pwd)"
fi
