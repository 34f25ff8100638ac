"""capabilities(): the ISAs and CPU features the engine reports, the features checked against the
kernel's auxiliary vector read through ctypes (getauxval), independently of the engine."""
from __future__ import annotations

import ctypes
import platform

from onebit.runtime import capabilities
from onebit.runtime.engine import ISAS

AT_HWCAP = 16
HWCAP_ASIMDDP = 1 << 20  # aarch64: Armv8.2 dot product (SDOT/UDOT)


def _hwcap() -> int:
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    return int(libc.getauxval(AT_HWCAP))


def test_capabilities_report():
    caps = capabilities()
    assert set(caps) == {"supported", "features", "default", "active", "forced_by_env", "threads"}
    assert caps["supported"][0] == "scalar" and set(caps["supported"]) <= set(ISAS)
    assert caps["active"] in caps["supported"] and caps["threads"] >= 1


def test_neon_dotprod_reported_where_the_cpu_has_it():
    caps = capabilities()  # a build with the NEON kernels on an aarch64 CPU with the feature
    has_dotprod = platform.machine() == "aarch64" and "neon" in caps["supported"] and bool(_hwcap() & HWCAP_ASIMDDP)
    assert caps["features"] == (["neon-dotprod"] if has_dotprod else [])
