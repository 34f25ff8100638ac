"""CIFAR-10 (Krizhevsky, 2009) from one of three copies, tried in this order:

1. the official ``cifar-10-python.tar.gz`` (downloadable; exact pixels, official order:
   ``data_batch_1..5`` then ``test_batch``);
2. that archive already extracted (``cifar-10-batches-py/``, each batch file checked);
3. the shared JPEG copy ``cifar10-jpeg-yoongikim.tar.xz`` (real images re-encoded as JPEG q75,
   one folder per class).  Its order: classes interleaved round robin, sample i has label
   ``i % 10`` and is the ``i // 10``-th file (by name) of that class — see
   :mod:`onebit.data.ordering`.  Within a class the file number is the original batch order, so
   this is deterministic but not the official interleaving, which the copy does not record.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from onebit.data.errors import DatasetFormatError, DatasetNotFoundError
from onebit.data.ordering import interleave
from onebit.data.registry import DATASETS
from onebit.data.sources import (FileSpec, downloads_enabled, find_file, locate,
                                 missing_message, verify)

CLASSES = DATASETS["cifar10"].class_names
_SUBDIRS = ("cifar10", "cifar-10", "")

PYTHON_TARBALL = FileSpec(
    "cifar-10-python.tar.gz", ("c58f30108f718f92721af3b95e74349a",), size=170498071,
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    subdirs=_SUBDIRS, download_subdir="cifar10")
JPEG_TARBALL = FileSpec(
    "cifar10-jpeg-yoongikim.tar.xz", ("40c9cbf57fcb53840e89882e070d2c93",), size=18437904,
    subdirs=_SUBDIRS)
_BATCH_DIR = "cifar-10-batches-py"
_BATCHES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def _unpickle_batch(raw: bytes, name: str):
    # The official batches are Python pickles; they are only read after their MD5 (or the
    # archive's) matched the published value, so no untrusted pickle is ever loaded.
    d = pickle.loads(raw, encoding="bytes")
    try:
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (KeyError, TypeError) as exc:
        raise DatasetFormatError(f"{name}: not a CIFAR-10 batch ({exc})") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DatasetFormatError(f"{name}: unexpected batch shape {data.shape}")
    # rows are CHW planes (1024 R, 1024 G, 1024 B); onebit stores NHWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _assemble(batches: dict) -> dict:
    out = {}
    train = [batches[b] for b in _TRAIN_BATCHES]
    out["train"] = (np.ascontiguousarray(np.concatenate([t[0] for t in train])),
                    np.concatenate([t[1] for t in train]))
    out["test"] = (np.ascontiguousarray(batches["test_batch"][0]), batches["test_batch"][1])
    return out


class PythonTarballSource:
    tag = "python"

    def __init__(self, path: Path):
        self.paths = (path,)

    def decode(self, size: int) -> dict:
        batches = {}
        with tarfile.open(self.paths[0], "r:gz") as tf:
            for m in tf:
                base = m.name.rsplit("/", 1)[-1]
                if m.isfile() and base in _BATCHES:
                    batches[base] = _unpickle_batch(tf.extractfile(m).read(), m.name)
        missing = sorted(set(_BATCHES) - set(batches))
        if missing:
            raise DatasetFormatError(f"{self.paths[0]}: archive lacks {', '.join(missing)}")
        return _assemble(batches)


class BatchFolderSource:
    tag = "python"  # same pixels and order as the tarball

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths = tuple(folder / b for b in _BATCHES)
        for b, md5 in _BATCHES.items():
            verify(folder / b, FileSpec(b, (md5,)))

    def decode(self, size: int) -> dict:
        return _assemble({b: _unpickle_batch((self.folder / b).read_bytes(), str(self.folder / b))
                          for b in _BATCHES})


class JpegTarballSource:
    tag = "jpeg-yoongikim"

    def __init__(self, path: Path):
        self.paths = (path,)

    def decode(self, size: int) -> dict:
        from PIL import Image
        from tqdm.auto import tqdm

        cls_id = {c: i for i, c in enumerate(CLASSES)}
        found = {"train": [], "test": []}  # (class id, file name, HWC array)
        with tarfile.open(self.paths[0], "r:xz") as tf, tqdm(
                total=60000, desc="decoding CIFAR-10 JPEG", unit="img", leave=False,
                disable=None) as bar:
            for m in tf:
                if not m.isfile():
                    continue
                parts = m.name.split("/")
                if len(parts) != 4 or parts[1] not in found or parts[2] not in cls_id:
                    raise DatasetFormatError(f"{self.paths[0]}: unexpected member {m.name}")
                with Image.open(io.BytesIO(tf.extractfile(m).read())) as im:
                    arr = np.asarray(im.convert("RGB"))
                if arr.shape != (32, 32, 3):
                    raise DatasetFormatError(f"{m.name}: image is {arr.shape}, not 32x32x3")
                found[parts[1]].append((cls_id[parts[2]], parts[3], arr))
                bar.update(1)
        out = {}
        for split, items in found.items():
            items.sort(key=lambda t: (t[0], t[1]))
            labels = np.array([t[0] for t in items], dtype=np.int64)
            perm = interleave(labels)
            out[split] = (np.stack([items[i][2] for i in perm]), labels[perm])
        return out


def resolve(name: str, split: str, roots, size: int):
    path = find_file(PYTHON_TARBALL, roots)
    if path is not None:
        verify(path, PYTHON_TARBALL)
        return PythonTarballSource(path)
    for r in roots:
        for sub in _SUBDIRS:
            folder = Path(r) / sub / _BATCH_DIR
            if all((folder / b).is_file() for b in _BATCHES):
                return BatchFolderSource(folder)
    path = find_file(JPEG_TARBALL, roots)
    if path is not None:
        verify(path, JPEG_TARBALL)
        return JpegTarballSource(path)
    if not downloads_enabled():
        raise DatasetNotFoundError(missing_message(
            [PYTHON_TARBALL, JPEG_TARBALL], roots,
            "Either file works (or the extracted cifar-10-batches-py/ folder); downloads are "
            "disabled (ONEBIT_NO_DOWNLOAD is set)"))
    return PythonTarballSource(locate(PYTHON_TARBALL, roots))
