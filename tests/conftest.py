"""Suite-wide settings: tests never download (every loader fails fast instead), and they read
the offline datasets folder (``datasets_root``); the ISA fixtures (``isa``: every ISA, skipped
with the reason where this CPU or build lacks it, never dropped silently; ``simd_isa``: the SIMD
ISAs compared against the scalar reference); the ``one_torch_thread`` fixture for tests that
run tiny torch models. ``tests/`` is on the import path (pytest's rootdir conftest), so test
modules share helpers such as ``tiny_models``."""
import os
from pathlib import Path

import pytest

os.environ["ONEBIT_NO_DOWNLOAD"] = "1"

REPO = Path(__file__).resolve().parents[1]


def _find_datasets() -> Path | None:
    """The first ONEBIT_DATA entry that holds MNIST, else ../shared/datasets next to the checkout."""
    for item in os.environ.get("ONEBIT_DATA", "").split(os.pathsep):
        if item and (Path(item) / "mnist").is_dir():
            return Path(item)
    shared = REPO.parent / "shared" / "datasets"
    return shared if (shared / "mnist").is_dir() else None


DATASETS = _find_datasets()
if DATASETS is not None and not os.environ.get("ONEBIT_DATA"):
    os.environ["ONEBIT_DATA"] = str(DATASETS)  # every loader of the session reads the offline copies


@pytest.fixture(scope="session")
def datasets_root() -> Path:
    """The offline datasets folder (ONEBIT_DATA, else ../shared/datasets); the test is skipped,
    visibly, when there is none."""
    if DATASETS is None:
        pytest.skip("no datasets folder (set ONEBIT_DATA, or put them in ../shared/datasets)")
    return DATASETS


ALL_ISAS = ("scalar", "avx2", "avx512", "neon")
SIMD_ISAS = ("avx2", "avx512", "neon")


def isa_or_skip(isa: str) -> str:
    from onebit.runtime.engine import engine

    if isa not in engine.supported_isas():
        pytest.skip(f"this CPU/build has no {isa} (supported: {', '.join(engine.supported_isas())})")
    return isa


@pytest.fixture(params=ALL_ISAS)
def isa(request) -> str:
    """Every ISA, skipped where the CPU lacks it."""
    return isa_or_skip(request.param)


@pytest.fixture(params=SIMD_ISAS)
def simd_isa(request) -> str:
    """SIMD ISAs (compared against the scalar reference), skipped where the CPU lacks them."""
    return isa_or_skip(request.param)


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test (restored afterwards): tiny tensors gain nothing
    from torch's pool, and the 2-core machine is shared."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
