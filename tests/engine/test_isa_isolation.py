"""ISA isolation of the built extension: code compiled with AVX2/AVX-512 flags must stay inside
the kernels that run only after the run-time ISA check.

Each ISA's kernels are their own translation units compiled with their own flags. An inline
function or template instantiated in such a unit (``std::vector<int>::assign``, say) is emitted
as a weak COMDAT symbol; the linker keeps ONE copy for the whole library, and if it keeps the
AVX2/AVX-512 copy, every caller (the scalar path, the bindings, another ISA's kernel) runs
AVX2/AVX-512 instructions: SIGILL on a CPU without them. This test disassembles the built
extension and fails when any weak function, or any function outside ``onebit::kernels``, contains a VEX/EVEX
instruction (no baseline x86-64 translation unit can produce one), naming the function.
"""
from __future__ import annotations

import bisect
import platform
import re
import shutil
import subprocess

import pytest

from onebit.runtime.engine import engine

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or shutil.which("objdump") is None
                                or shutil.which("nm") is None,
                                reason="needs x86-64, objdump and nm")

# AT&T mnemonics of VEX/EVEX-encoded instructions all start with "v" (vmovdqu, vpshufb,
# vzeroupper, vpopcntq, ...); the only non-AVX ones are verr/verw, never emitted by a compiler.
_VEX = re.compile(r"^\s*([0-9a-f]+):\s+(v(?!err|erw)[a-z0-9]+)\b")


def _functions(so_path: str) -> list[tuple[int, int, str, str]]:
    """(start, end, demangled name, nm type) of every exported or weak function (the extension is
    stripped of local symbols; weak COMDAT copies, the ones a link can mix up, are all here)."""
    out = subprocess.run(["nm", "-D", "-S", "-C", "--defined-only", so_path], check=True,
                         capture_output=True, text=True).stdout
    funcs = []
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[2] in ("T", "t", "W", "w", "u", "i"):
            start, size = int(parts[0], 16), int(parts[1], 16)
            funcs.append((start, start + size, parts[3], parts[2]))
    return sorted(funcs)


def _leaks(so_path: str) -> dict[str, str]:
    # A kernel's own (strong) entry point may use its ISA; a weak (COMDAT) copy never may,
    # whatever its namespace: another translation unit may be linked to it.
    funcs = [f for f in _functions(so_path) if not (f[3] == "T" and f[2].startswith("onebit::kernels::"))]
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", so_path], check=True,
                         capture_output=True, text=True).stdout
    starts = [f[0] for f in funcs]
    leaks: dict[str, str] = {}
    for line in out.splitlines():
        v = _VEX.match(line)
        if not v:
            continue
        addr = int(v.group(1), 16)
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and addr < funcs[i][1]:
            leaks.setdefault(funcs[i][2], v.group(2))
    return leaks


def test_no_simd_code_outside_the_isa_kernels():
    leaks = _leaks(engine.__file__)
    assert not leaks, (
        "functions outside onebit::kernels contain AVX/AVX-512 instructions (an ISA translation unit's "
        "copy of an inline/template function won the link; keep std containers' out-of-line code out of "
        "ISA units): " + "; ".join(f"{k} ({v})" for k, v in sorted(leaks.items())[:10]))
