#!/usr/bin/env bash
# The Python package on aarch64, without a board: builds the package with pip for aarch64
# (`pip wheel .`: scikit-build-core runs this repository's CMakeLists.txt with the Debian cross
# compiler, scripts/arm/aarch64-linux-gnu.cmake, against the Python headers of a Debian arm64
# tree), checks that the extension holds the NEON kernels, and runs the runtime's Python tests
# (the ones that need no torch) with the tree's python3 and numpy under qemu-aarch64.
# The tree (debootstrap --variant=minbase, ~100 MB download the first time) is cached outside the
# repository in ONEBIT_ARM_CACHE (default ~/.cache/onebit-arm). Needs root and the network the
# first time (apt-get for the cross compiler, qemu-user and debootstrap; the tree's packages), and
# the .venv of scripts/setup.sh (pip, scikit-build-core, nanobind, nlohmann-json). Prints the time
# of each step and pytest's closing line; exit status 1 on any failure.
#   scripts/test-arm-python.sh                  build, check and test
#   ONEBIT_ARM_PYTEST="tests/engine/test_bitpack.py" scripts/test-arm-python.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${ONEBIT_ARM_CACHE:-$HOME/.cache/onebit-arm}
tree="$cache/debian-bookworm-arm64"
mirror=${ONEBIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
out="$root/build-arm/python"
python="$root/.venv/bin/python"
# Runtime tests that import no torch (the runtime needs numpy only).
default_tests="tests/runtime/test_capabilities.py tests/engine/test_bconv_errors.py
  tests/engine/test_bconv_masked.py tests/engine/test_bconv_prepared.py tests/engine/test_bconv_reference.py
  tests/engine/test_bconv_simd.py tests/engine/test_bitpack.py tests/engine/test_conv8_prepared.py
  tests/engine/test_network_add_dense.py tests/engine/test_network_conv8.py
  tests/engine/test_network_conv8_first_layer.py tests/engine/test_network_dense_float_pixels.py
  tests/engine/test_network_errors.py tests/engine/test_network_maxpool_wide.py tests/engine/test_network_pool.py
  tests/engine/test_output_int8_f64.py tests/engine/test_threadpool.py tests/test_bits.py"
read -r -a tests <<<"$(echo ${ONEBIT_ARM_PYTEST:-$default_tests})"

step_start=$SECONDS
step() {  # step <name>: prints the time the previous step took
  echo "== $1 (previous step $((SECONDS - step_start)) s)"
  step_start=$SECONDS
}

step "tools"
source scripts/arm/install-tools.sh
install_tools test-arm-python.sh "aarch64-linux-gnu-g++ crossbuild-essential-arm64" "qemu-aarch64 qemu-user" \
  "debootstrap debootstrap"
if [ ! -x "$python" ]; then
  echo "test-arm-python.sh: no .venv (run scripts/setup.sh first)" >&2
  exit 2
fi

step "Debian arm64 tree ($tree)"
if [ ! -x "$tree/usr/bin/python3" ]; then
  rm -rf "$tree.part"
  mkdir -p "$cache"
  # First stage only (download and unpack, no arm64 code runs); then every downloaded package
  # is unpacked into the tree: enough to run python3 and numpy under qemu-aarch64 -L.
  debootstrap --arch=arm64 --variant=minbase --foreign \
    --include=python3,python3-dev,python3-numpy,python3-pytest,python3-hypothesis,python3-click,python3-tqdm \
    bookworm "$tree.part" "$mirror" >"$cache/debootstrap.log"
  for deb in "$tree.part"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$tree.part"; done
  rm -f "$tree.part"/var/cache/apt/archives/*.deb
  # numpy's BLAS and LAPACK, which dpkg's update-alternatives would have linked.
  for lib in "$tree.part"/usr/lib/aarch64-linux-gnu/{blas/libblas,lapack/liblapack}.so.3; do
    ln -sf "$(basename "$(dirname "$lib")")/$(basename "$lib")" "$tree.part/usr/lib/aarch64-linux-gnu/$(basename "$lib")"
  done
  mv "$tree.part" "$tree"
fi
qpy=(qemu-aarch64 -L "$tree" "$tree/usr/bin/python3")
pyver=$("${qpy[@]}" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
hostver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [ "$pyver" != "$hostver" ]; then
  echo "test-arm-python.sh: the tree's Python is $pyver but .venv's is $hostver (the extension is built for one)" >&2
  exit 2
fi
soabi="cpython-${pyver/./}-aarch64-linux-gnu"

step "pip wheel . for aarch64"
rm -rf "$out/wheel" "$out/site" "$out/include"
mkdir -p "$out/include" "$out/wheel" "$out/site"
# The tree's Python headers with its aarch64 pyconfig.h in place of Debian's multiarch wrapper.
cp -r "$tree/usr/include/python$pyver/." "$out/include/"
cp "$tree/usr/include/aarch64-linux-gnu/python$pyver/pyconfig.h" "$out/include/pyconfig.h"
CMAKE_ARGS="-DCMAKE_TOOLCHAIN_FILE=$root/scripts/arm/aarch64-linux-gnu.cmake -DPython_INCLUDE_DIR=$out/include \
-DPython_SOABI=$soabi" SETUPTOOLS_EXT_SUFFIX=".$soabi.so" _PYTHON_HOST_PLATFORM=linux-aarch64 \
  SKBUILD_BUILD_DIR="$out/cmake" CMAKE_BUILD_PARALLEL_LEVEL=${ONEBIT_ARM_JOBS:-2} \
  "$python" -m pip wheel -q --no-build-isolation --no-deps -w "$out/wheel" . >"$out/pip.log" 2>&1 ||
  { tail -n 30 "$out/pip.log"; exit 1; }
wheel=$(ls "$out"/wheel/onebit-*aarch64*.whl)
echo "built $(basename "$wheel")"
"$python" -m zipfile -e "$wheel" "$out/site"
ext=$(ls "$out"/site/onebit/_engine*.so)
failed=0
# The extension is an aarch64 object holding the NEON kernels: cnt v.16b (the binary conv's
# popcount) and sdot (the int8 convolution's dot-product unit).
disasm=$(aarch64-linux-gnu-objdump -d "$ext")
if aarch64-linux-gnu-objdump -f "$ext" | grep -q "elf64-littleaarch64" &&
   grep -q "cnt	v[0-9]*\.16b" <<<"$disasm" && grep -q "sdot	v" <<<"$disasm"; then
  echo "PASS $(basename "$ext"): aarch64, NEON kernels inside (cnt v.16b, sdot)"
else
  echo "FAIL $(basename "$ext"): not an aarch64 extension with the NEON kernels"
  failed=1
fi

step "runtime Python tests under qemu-aarch64 (${#tests[@]} files)"
set +e
PYTHONPATH="$out/site" ONEBIT_NO_DOWNLOAD=1 "${qpy[@]}" -m pytest -q -p no:cacheprovider "${tests[@]}" 2>&1 |
  tee "$out/pytest.log" | tail -n 25
rc=${PIPESTATUS[0]}
set -e
step "done"
[ "$rc" = 0 ] && [ "$failed" = 0 ]
