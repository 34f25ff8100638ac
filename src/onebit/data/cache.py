"""Decoded-array cache: ``<cache>/arrays/<key>.{images,labels}.npy`` plus ``<key>.json``.

Images are stored uint8 NHWC, labels int64, as plain ``.npy`` so a cache hit is a memory map
(no copy; the second load of CIFAR-10 costs a CRC pass over 150 MB, ~0.1 s).  The JSON file is
written last and holds the shapes and CRC-32 of both arrays: a file that is missing, truncated,
of the wrong shape or whose CRC differs is treated as absent and rebuilt.  Every write goes to a
temporary name first and is renamed into place, so concurrent processes never see half a file.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np

from onebit.data.sources import cache_dir

__all__ = ["FORMAT_VERSION", "cache_key", "array_dir", "save", "load", "lock"]

# Bump whenever decoding changes what ends up in the arrays (order, resize, colour handling).
FORMAT_VERSION = 1


def cache_key(name: str, split: str, size: int, tag: str) -> str:
    return f"{name}-{split}-{size}px-{tag}-v{FORMAT_VERSION}"


def array_dir() -> Path:
    return cache_dir() / "arrays"


def _paths(key: str):
    d = array_dir()
    return d / f"{key}.images.npy", d / f"{key}.labels.npy", d / f"{key}.json"


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8).reshape(-1))


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is meant to be shared
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save(key: str, images: np.ndarray, labels: np.ndarray) -> bool:
    """Store one split; returns False (with a warning) when the cache is not writable."""
    img_p, lab_p, meta_p = _paths(key)
    meta = {
        "format_version": FORMAT_VERSION,
        "images": {"shape": list(images.shape), "dtype": str(images.dtype), "crc32": _crc(images)},
        "labels": {"shape": list(labels.shape), "dtype": str(labels.dtype), "crc32": _crc(labels)},
    }
    try:
        img_p.parent.mkdir(parents=True, exist_ok=True)
        _atomic(img_p, lambda f: np.save(f, images, allow_pickle=False))
        _atomic(lab_p, lambda f: np.save(f, labels, allow_pickle=False))
        _atomic(meta_p, lambda f: f.write(json.dumps(meta, indent=1).encode()))
    except OSError as exc:
        warnings.warn(f"onebit.data: cannot write the array cache in {img_p.parent} ({exc}); "
                      "set ONEBIT_CACHE_DIR to a writable folder to avoid decoding every time",
                      RuntimeWarning, stacklevel=3)
        return False
    return True


def _load_one(path: Path, meta: dict):
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    if list(arr.shape) != meta["shape"] or str(arr.dtype) != meta["dtype"]:
        return None
    if _crc(arr) != meta["crc32"]:
        return None
    return arr


def load(key: str):
    """``(images, labels)`` as read-only memory maps, or None when absent or corrupt."""
    img_p, lab_p, meta_p = _paths(key)
    try:
        meta = json.loads(meta_p.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            return None
        images = _load_one(img_p, meta["images"])
        labels = _load_one(lab_p, meta["labels"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, truncated or unparsable: rebuild
    if images is None or labels is None or len(images) != len(labels):
        return None
    return images, labels


@contextlib.contextmanager
def lock(name: str):
    """Exclusive inter-process lock ``<arrays>/.<name>.lock`` (advisory ``flock``; a no-op where
    flock or the cache directory is unavailable: the atomic writes keep that case correct)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        array_dir().mkdir(parents=True, exist_ok=True)
        f = open(array_dir() / f".{name}.lock", "a")
    except OSError:
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
