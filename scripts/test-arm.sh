#!/usr/bin/env bash
# Cross-builds the C++ engine core with its NEON kernels and the kernel equality program
# (tests/cpp/kernel_equality.cpp) for aarch64 and 32-bit armv7 (armhf, NEON), plus a
# scalar-only armhf build (an architecture with no SIMD kernels), and runs each under qemu-user;
# the aarch64 program runs twice, on an emulated CPU with the Armv8.2 dot product and on one
# without (cortex-a72), and the capability report is checked on emulated CPUs with and without
# it (neon-dotprod on -cpu max and cortex-a76, not on cortex-a72 and cortex-a53). Each target also builds onebit-run (runtime, C API, tool) and runs the zoo
# network files (random weights, seeded inputs; scripts/zoo_reference.py, x86 side, needs the
# .venv of scripts/setup.sh, else a SKIP line) and compares their logits with the x86 build's
# scalar logits byte for byte, one case per network and target.
# Installs the Debian cross compilers and qemu-user when missing (needs root and the network
# the first time). Prints each program's cases per op and ISA and a closing "N passed, N failed"
# over all targets; exit status 1 on any failure.
#   scripts/test-arm.sh              all targets
#   ONEBIT_ARM_TARGETS="aarch64" scripts/test-arm.sh
#   ONEBIT_ARM_ZOO_BATCH=1 scripts/test-arm.sh      images per zoo network (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build="$root/build-arm"
targets=${ONEBIT_ARM_TARGETS:-"aarch64 aarch64-nodot armhf armhf-scalar"}
jobs=${ONEBIT_ARM_JOBS:-2}

source scripts/arm/install-tools.sh
install_tools test-arm.sh "aarch64-linux-gnu-g++ crossbuild-essential-arm64" \
  "arm-linux-gnueabihf-g++ crossbuild-essential-armhf" "qemu-aarch64 qemu-user" "qemu-arm qemu-user"

common=(-std=c++17 -O2 -ffp-contract=off -fno-math-errno -I"$root/src/cpp" -Wall -Wno-psabi)
core_sources=("$root"/src/cpp/onebit/*.cpp "$root"/src/cpp/onebit/kernels/*_scalar.cpp)
neon_sources=("$root"/src/cpp/onebit/kernels/*_neon.cpp)
dot_sources=("$root"/src/cpp/onebit/kernels/*_neondot.cpp)
# onebit-run (the runtime, the C API and the tool), for the zoo network files
runtime_sources=("$root"/src/cpp/onebit/runtime/*.cpp "$root/src/cpp/capi/onebit_c.cpp"
                 "$root/src/cpp/tools/onebit_run.cpp")
python="$root/.venv/bin/python"
json_include=""
[ -x "$python" ] && json_include=$("$python" -c "import nlohmann_json; print(nlohmann_json.get_include())" 2>/dev/null || true)

# queue <array of objects> <flags> <sources...>: one compile job per source into $jobs_file (the
# caller's), its object file under $out appended to the named array.
queue() {
  local -n into=$1
  local flags=$2 src obj
  shift 2
  for src in "$@"; do
    obj="$out/$(basename "${src%.cpp}").o"
    into+=("$obj")
    printf '%s\0%s\0%s\0' "$src" "$obj" "$flags" >>"$jobs_file"
  done
}

# build_and_run <name> <compiler> <qemu command> <sysroot> <core flags> <neon flags, or "none">
#               <dot-product flags, or "none">
build_and_run() {
  local name=$1 cxx=$2 qemu=$3 sysroot=$4 core_flags=$5 neon_flags=$6 dot_flags=$7
  local out="$build/$name"
  mkdir -p "$out"
  local defs=() objs=() srcs=("${core_sources[@]}")
  local net_objs=() net_srcs=()
  [ -n "$json_include" ] && net_srcs=("${runtime_sources[@]}")
  [ "$neon_flags" != none ] && defs=(-DONEBIT_HAVE_NEON=1)
  # one compile per translation unit, $jobs at a time
  local jobs_file="$out/jobs" test_objs=()
  : >"$jobs_file"
  queue objs "$core_flags" "${srcs[@]}"
  queue test_objs "$core_flags" "$root/tests/cpp/kernel_equality.cpp"
  queue net_objs "$core_flags -I$root/include -I$json_include" "${net_srcs[@]}"
  if [ "$neon_flags" != none ]; then queue objs "$core_flags $neon_flags" "${neon_sources[@]}"; fi
  if [ "$dot_flags" != none ]; then queue objs "$core_flags $dot_flags" "${dot_sources[@]}"; fi
  # shellcheck disable=SC2016
  xargs -0 -n 3 -P "$jobs" sh -c '"$0" $3 '"${common[*]} ${defs[*]:-}"' -c "$1" -o "$2"' "$cxx" <"$jobs_file"
  "$cxx" "${objs[@]}" "${test_objs[@]}" -o "$out/kernel_equality" -pthread
  rm -f "$out/onebit-run"
  ((${#net_objs[@]})) && "$cxx" "${objs[@]}" "${net_objs[@]}" -o "$out/onebit-run" -pthread
  run_one "$name" "$qemu" "$sysroot" "$out/kernel_equality"
}

# run_one <name> <qemu command> <sysroot> <program>: result in build-arm/<name>/
run_one() {
  local name=$1 qemu=$2 sysroot=$3 prog=$4
  mkdir -p "$build/$name"
  echo "== $name: $qemu -L $sysroot $prog"
  local log="$build/$name/result.txt"
  set +e
  # shellcheck disable=SC2086
  $qemu -L "$sysroot" "$prog" | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  echo "$rc" >"$build/$name/rc"
}

for t in $targets; do
  case $t in
    # qemu's "max" CPU has the Armv8.2 dot product (the SDOT int8 conv); cortex-a72 has not.
    aarch64) build_and_run aarch64 aarch64-linux-gnu-g++ "qemu-aarch64 -cpu max" /usr/aarch64-linux-gnu \
      "-march=armv8-a" "" "-march=armv8.2-a+dotprod" ;;
    aarch64-nodot)
      { [ -x "$build/aarch64/kernel_equality" ] && { [ -z "$json_include" ] || [ -x "$build/aarch64/onebit-run" ]; }; } ||
        build_and_run aarch64 aarch64-linux-gnu-g++ \
        "qemu-aarch64 -cpu max" /usr/aarch64-linux-gnu "-march=armv8-a" "" "-march=armv8.2-a+dotprod"
      run_one aarch64-nodot "qemu-aarch64 -cpu cortex-a72" /usr/aarch64-linux-gnu "$build/aarch64/kernel_equality" ;;
    armhf) build_and_run armhf arm-linux-gnueabihf-g++ qemu-arm /usr/arm-linux-gnueabihf \
      "" "-march=armv7-a -mfpu=neon" none ;;
    armhf-scalar) build_and_run armhf-scalar arm-linux-gnueabihf-g++ qemu-arm /usr/arm-linux-gnueabihf \
      "" none none ;;
    *) echo "unknown target '$t' (aarch64, aarch64-nodot, armhf, armhf-scalar)" >&2; exit 2 ;;
  esac
done

# ISA isolation on 32-bit ARM, where NEON is optional: outside the NEON units no object may hold
# a NEON instruction, and in the NEON units none may sit in a weak (COMDAT) section such as an
# out-of-line std template, which the linker may keep as the program's only copy; either would
# make a VFP-only core die with SIGILL outside the NEON kernels. NEON = q registers, d16-d31,
# vld1-4/vst1-4, integer vector data types (branch targets, literal pool words and comments ignored).
neon_lines() {  # <object> <sections: all | shared>: "section count" per section with NEON code
  arm-linux-gnueabihf-objdump -d --no-show-raw-insn "$1" | awk -v which="$2" \
    -v re='[^a-z_]q[0-9]|[^a-z_]d(1[6-9]|2[0-9]|3[01])([^0-9a-f]|$)|vld[1-4]|vst[1-4]|\\.(i|p)(8|16|32|64)|\\.[us](8|16)([^0-9]|$)' '
    /^Disassembly of section/ { sec = $4; sub(/:$/, "", sec); next }
    { if (!sub(/^ *[0-9a-f]+:\t/, "")) next; sub(/[<@].*/, "") }
    /^c?b/ || /^\.(word|short|byte)/ { next }
    $0 ~ re && (which == "all" || sec != ".text") { n[sec]++ }
    END { for (s in n) print s, n[s] }'
}
isolation_failed=0
if [[ " $targets " == *" armhf "* ]]; then
  for obj in "$build"/armhf/*.o; do
    case $obj in *_neon.o) which=shared ;; *) which=all ;; esac
    found=$(neon_lines "$obj" "$which")
    if [ -n "$found" ]; then
      echo "FAIL isa-isolation armhf: NEON code in $(basename "$obj") ($which sections): $found"
      isolation_failed=1
    fi
  done
  [ "$isolation_failed" = 0 ] && echo "isa-isolation armhf: NEON instructions only in the NEON units' own code"
fi

# ONEBIT_ISA on the emulated aarch64 CPU: neon and scalar selected, an x86 ISA a clear error.
isa_env_failed=0 isa_env_cases=0
if [[ " $targets " == *" aarch64 "* ]]; then
  for case in "neon|default ISA: neon|0" "scalar|default ISA: scalar|0" \
              "avx2|error: ONEBIT_ISA=avx2 but this CPU does not support it|3" "sse9|error: unknown ISA 'sse9'|3"; do
    IFS='|' read -r isa want want_rc <<<"$case"
    set +e
    got=$(ONEBIT_ISA=$isa qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/aarch64/kernel_equality" --default-isa)
    rc=$?
    set -e
    isa_env_cases=$((isa_env_cases + 1))
    if [[ $got != "$want"* ]] || [ "$rc" != "$want_rc" ]; then
      echo "FAIL ONEBIT_ISA=$isa: got '$got' (exit $rc), want '$want' (exit $want_rc)"
      isa_env_failed=$((isa_env_failed + 1))
    fi
  done
  echo "ONEBIT_ISA on aarch64: $((isa_env_cases - isa_env_failed)) of $isa_env_cases cases as expected"
fi

# The capability report (cpu_features(), behind onebit.runtime.capabilities()) on emulated CPUs
# with and without the Armv8.2 dot product: neon-dotprod exactly where HWCAP_ASIMDDP is set.
caps_failed=0 caps_cases=0
# caps_check <qemu command> <sysroot> <program> <expected features>
caps_check() {
  local want="supported: scalar neon; features: $4" got
  got=$($1 -L "$2" "$3" --capabilities 2>&1 || true)
  caps_cases=$((caps_cases + 1))
  if [ "$got" != "$want" ]; then
    echo "FAIL capabilities ($1): got '$got', want '$want'"
    caps_failed=$((caps_failed + 1))
  fi
}
if [[ " $targets " == *" aarch64 "* || " $targets " == *" aarch64-nodot "* ]]; then
  caps_check "qemu-aarch64 -cpu max" /usr/aarch64-linux-gnu "$build/aarch64/kernel_equality" neon-dotprod
  caps_check "qemu-aarch64 -cpu cortex-a76" /usr/aarch64-linux-gnu "$build/aarch64/kernel_equality" neon-dotprod
  caps_check "qemu-aarch64 -cpu cortex-a72" /usr/aarch64-linux-gnu "$build/aarch64/kernel_equality" -
  caps_check "qemu-aarch64 -cpu cortex-a53" /usr/aarch64-linux-gnu "$build/aarch64/kernel_equality" -
fi
if [[ " $targets " == *" armhf "* ]]; then
  caps_check qemu-arm /usr/arm-linux-gnueabihf "$build/armhf/kernel_equality" -
fi
if ((caps_cases)); then
  echo "capabilities: $((caps_cases - caps_failed)) of $caps_cases emulated CPUs report neon-dotprod as expected"
fi

# Zoo network files (random weights) with fixed inputs, written with the x86 build's scalar
# logits by scripts/zoo_reference.py; each target's onebit-run must write the same logits, byte for
# byte (NEON kernels; scalar on the armhf build without them).
zoo_batch=${ONEBIT_ARM_ZOO_BATCH:-2}
zoo_passed=0 zoo_failed=0 zoo_nets=()
if [ -z "$json_include" ] || ! "$python" -c "import torch, onebit.runtime" 2>/dev/null; then
  echo "SKIP zoo networks: no .venv with torch, nlohmann-json and onebit (run scripts/setup.sh first)"
else
  rm -rf "$build/zoo"; mkdir -p "$build"
  echo "== zoo networks: x86 scalar logits of $zoo_batch seeded images each"
  if ! "$python" "$root/scripts/zoo_reference.py" --out "$build/zoo" --batch "$zoo_batch" >"$build/zoo.txt"; then
    echo "FAIL zoo networks: scripts/zoo_reference.py could not write the files"
    zoo_failed=$((zoo_failed + 1))
  fi
  mapfile -t zoo_nets < <(cut -d' ' -f1 "$build/zoo.txt")
fi
# zoo_run <target> <qemu command> <sysroot> <onebit-run> <isa>
zoo_run() {
  local name=$1 qemu=$2 sysroot=$3 prog=$4 isa=$5 net got rc start
  for net in "${zoo_nets[@]}"; do
    got="$build/$name/$net.logits"
    rm -f "$got"
    start=$SECONDS
    set +e
    # shellcheck disable=SC2086
    $qemu -L "$sysroot" "$prog" "$build/zoo/$net.onebit" --input "$build/zoo/$net.input" --batch "$zoo_batch" \
      --isa "$isa" --threads 2 --logits "$got" >"$build/$name/$net.out" 2>&1
    rc=$?
    set -e
    if [ "$rc" = 0 ] && cmp -s "$got" "$build/zoo/$net.logits"; then
      echo "PASS zoo $name $net: $isa logits equal x86 scalar ($zoo_batch images, $((SECONDS - start)) s)"
      zoo_passed=$((zoo_passed + 1))
    else
      echo "FAIL zoo $name $net: $isa (exit $rc) $(cmp "$got" "$build/zoo/$net.logits" 2>&1 | head -n 1)"
      [ "$rc" = 0 ] || tail -n 3 "$build/$name/$net.out"
      zoo_failed=$((zoo_failed + 1))
    fi
  done
}
if ((${#zoo_nets[@]})); then
  for t in $targets; do
    case $t in
      aarch64) zoo_run aarch64 "qemu-aarch64 -cpu max" /usr/aarch64-linux-gnu "$build/aarch64/onebit-run" neon ;;
      aarch64-nodot) zoo_run aarch64-nodot "qemu-aarch64 -cpu cortex-a72" /usr/aarch64-linux-gnu \
        "$build/aarch64/onebit-run" neon ;;
      armhf) zoo_run armhf qemu-arm /usr/arm-linux-gnueabihf "$build/armhf/onebit-run" neon ;;
      armhf-scalar) zoo_run armhf-scalar qemu-arm /usr/arm-linux-gnueabihf "$build/armhf-scalar/onebit-run" scalar ;;
    esac
  done
  echo "zoo networks: $zoo_passed passed, $zoo_failed failed (${#zoo_nets[@]} networks)"
fi

passed=0 failed=0 bad=0
for t in $targets; do
  line=$(tail -n 1 "$build/$t/result.txt" || true)
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    echo "$t: no result line (exit status $(cat "$build/$t/rc"))"
    bad=1
  fi
  [ "$(cat "$build/$t/rc")" = 0 ] || bad=1
done
if [[ " $targets " == *" armhf "* ]]; then
  if [ "$isolation_failed" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi
passed=$((passed + isa_env_cases - isa_env_failed + caps_cases - caps_failed + zoo_passed))
failed=$((failed + isa_env_failed + caps_failed + zoo_failed))
echo "targets: $targets"
echo "$passed passed, $failed failed"
[ "$bad" = 0 ] && [ "$failed" = 0 ]
