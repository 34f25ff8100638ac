"""Fixtures of the data tests.

Tests never download: ONEBIT_NO_DOWNLOAD=1 for the whole session (download tests re-enable it
for themselves with a local fake source).  Real-data tests read the offline datasets folder
(``datasets_root``, tests/conftest.py) and decode through the user cache, so the 60k-image
CIFAR-10 JPEG decode happens once per machine, not once per run.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _no_download():
    old = os.environ.get("ONEBIT_NO_DOWNLOAD")
    os.environ["ONEBIT_NO_DOWNLOAD"] = "1"
    yield
    if old is None:
        os.environ.pop("ONEBIT_NO_DOWNLOAD", None)
    else:
        os.environ["ONEBIT_NO_DOWNLOAD"] = old


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache directory (arrays, checksum cache, downloads)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ONEBIT_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def cifar_test(datasets_root):
    import onebit.data as data

    return data.load("cifar10", "test", root=datasets_root)


@pytest.fixture(scope="session")
def imagenette_val64(datasets_root):
    import onebit.data as data

    return data.load("imagenette", "val", root=datasets_root, size=64)


@pytest.fixture(scope="session")
def cifar_train(datasets_root):
    import onebit.data as data

    return data.load("cifar10", "train", root=datasets_root)
