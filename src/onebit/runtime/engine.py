"""Access to the compiled engine and its ISA / thread configuration."""
from __future__ import annotations

import os

from onebit import _engine as engine  # the compiled extension

ISAS = ("scalar", "avx2", "avxvnni", "avx512", "neon")


def capabilities() -> dict:
    """What this CPU and build support and what the engine chose.

    Returns ``{"supported": [...], "features": [...], "default": name, "active": name,
    "forced_by_env": name|None, "threads": n}``. ``features`` lists what kernels use within an
    ISA where the CPU has it: ``"neon-dotprod"`` (Armv8.2 dot product, read from the kernel's
    HWCAP_ASIMDDP; the NEON int8 convolution then runs SDOT). ``ONEBIT_ISA`` forces an ISA
    (RuntimeError if the CPU lacks it).
    """
    return {
        "supported": list(engine.supported_isas()),
        "features": list(engine.cpu_features()),
        "default": engine.default_isa(),
        "active": engine.active_isa(),
        "forced_by_env": os.environ.get("ONEBIT_ISA") or None,
        "threads": engine.default_num_threads(),
    }
