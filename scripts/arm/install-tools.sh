# Sourced by scripts/test-arm.sh and scripts/test-arm-python.sh.
# install_tools <script name> "<command> <Debian package>"...: installs (apt-get, needs root and
# the network) the package of every command that is not on PATH; exits 2 naming them otherwise.
install_tools() {
  local name=$1 pair
  shift
  local need=()
  for pair in "$@"; do
    command -v "${pair% *}" >/dev/null || need+=("${pair#* }")
  done
  ((${#need[@]})) || return 0
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "$name: ${need[*]} missing and not root; install them with apt-get" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
}
