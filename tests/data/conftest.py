"""Fixtures of the data tests.

Tests never download: ONEBIT_NO_DOWNLOAD=1 for the whole session (download tests re-enable it
for themselves with a local fake source).  Real-data tests read the shared datasets folder
(ONEBIT_DATA, else ../shared/datasets next to the repository) and decode through the user
cache, so the 60k-image CIFAR-10 JPEG decode happens once per machine, not once per run.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _shared_root() -> Path | None:
    for item in os.environ.get("ONEBIT_DATA", "").split(os.pathsep):
        if item and (Path(item) / "mnist").is_dir():
            return Path(item)
    cand = REPO.parent / "shared" / "datasets"
    return cand if cand.is_dir() else None


@pytest.fixture(autouse=True, scope="session")
def _no_download():
    old = os.environ.get("ONEBIT_NO_DOWNLOAD")
    os.environ["ONEBIT_NO_DOWNLOAD"] = "1"
    yield
    if old is None:
        os.environ.pop("ONEBIT_NO_DOWNLOAD", None)
    else:
        os.environ["ONEBIT_NO_DOWNLOAD"] = old


@pytest.fixture(scope="session")
def shared_root() -> Path:
    root = _shared_root()
    if root is None:
        pytest.skip("shared datasets folder not present (set ONEBIT_DATA)")
    return root


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache directory (arrays, checksum cache, downloads)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ONEBIT_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def cifar_test(shared_root):
    import onebit.data as data

    return data.load("cifar10", "test", root=shared_root)


@pytest.fixture(scope="session")
def imagenette_val64(shared_root):
    import onebit.data as data

    return data.load("imagenette", "val", root=shared_root, size=64)


@pytest.fixture(scope="session")
def cifar_train(shared_root):
    import onebit.data as data

    return data.load("cifar10", "train", root=shared_root)
