"""Imagenette v2 (Howard, fast.ai: 10 easy ImageNet classes; 9469 train / 3925 val images).

Copies tried in this order (first found wins):

1. official archives ``imagenette2-160.tgz``, ``imagenette2-320.tgz``, ``imagenette2.tgz`` (the
   one closest above the requested size first; ``imagenette2-160.tgz`` or ``-320`` is
   downloaded when nothing is found and downloads are allowed);
2. the shared 224 px copies ``imagenette2-224-thunderinfy-{train,val}.tar.gz`` (one per split);
3. an extracted folder ``<name>/{train,val}/<wnid>/*.JPEG`` for any of the names above
   (no checksum exists for loose files; the image count per split is checked instead).

Labels are the index of the wnid in sorted order.  Each image is converted to RGB (grayscale and
CMYK images exist), its central square is resized once to ``size x size`` with PIL bilinear
(for the square 224 px copy that is a plain resize), and the result is cached per size.  Sample
order: classes interleaved round robin (see :mod:`onebit.data.ordering`), file-name order within
a class.
"""
from __future__ import annotations

import io
import tarfile
import zlib
from pathlib import Path

import numpy as np

from onebit.data.errors import DatasetFormatError, DatasetNotFoundError
from onebit.data.ordering import interleave
from onebit.data.registry import DATASETS, IMAGENETTE_WNIDS
from onebit.data.sources import (FileSpec, downloads_enabled, find_file, locate,
                                 missing_message, verify)

_SUBDIRS = ("imagenette", "")
_URL = "https://s3.amazonaws.com/fast-ai-imageclas/"
OFFICIAL = {
    160: FileSpec("imagenette2-160.tgz", ("e793b78cc4c9e9a4ccc0c1155377a412",),
                  urls=(_URL + "imagenette2-160.tgz",), subdirs=_SUBDIRS,
                  download_subdir="imagenette"),
    320: FileSpec("imagenette2-320.tgz", ("3df6f0d01a2c9592104656642f5e78a3",),
                  urls=(_URL + "imagenette2-320.tgz",), subdirs=_SUBDIRS,
                  download_subdir="imagenette"),
    0: FileSpec("imagenette2.tgz", ("fe2fc210e6bb7c5664d602c3cd71e612",),
                urls=(_URL + "imagenette2.tgz",), subdirs=_SUBDIRS,
                download_subdir="imagenette"),
}
SHARED = {
    "train": FileSpec("imagenette2-224-thunderinfy-train.tar.gz",
                      ("216c3a0e012df72215c65e1d23acc3be",), size=93346656, subdirs=_SUBDIRS),
    "test": FileSpec("imagenette2-224-thunderinfy-val.tar.gz",
                     ("aa77ae888379fab8da4d048d1f482099",), size=38931949, subdirs=_SUBDIRS),
}
_FOLDERS = ("imagenette2-160", "imagenette2-320", "imagenette2", "imagenette2-224-thunderinfy")
_WNID_LABEL = {w: i for i, w in enumerate(IMAGENETTE_WNIDS)}
_SPLIT_DIR = {"train": "train", "test": "val"}


def _preference(size: int) -> list[int]:
    if size <= 160:
        return [160, 320, 0]
    if size <= 320:
        return [320, 0, 160]
    return [0, 320, 160]


def resize_square(image, size: int) -> np.ndarray:
    """PIL image -> uint8 (size, size, 3): RGB, central square, one bilinear resize."""
    from PIL import Image

    im = image.convert("RGB")
    w, h = im.size
    s = min(w, h)
    if (w, h) != (s, s):
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
    out = im.resize((size, size), Image.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def _decode_items(items, size: int, where: str, desc: str):
    """items: iterable of (wnid, file name, bytes-producing callable)."""
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    rows = []
    for wnid, fname, read in tqdm(items, desc=desc, unit="img", leave=False, disable=None):
        if wnid not in _WNID_LABEL:
            raise DatasetFormatError(f"{where}: unknown class folder {wnid!r} ({fname})")
        try:
            with Image.open(io.BytesIO(read())) as im:
                arr = resize_square(im, size)
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetFormatError(f"{where}: cannot decode {wnid}/{fname}: {exc}") from exc
        rows.append((_WNID_LABEL[wnid], fname, arr))
    rows.sort(key=lambda r: (r[0], r[1]))
    labels = np.array([r[0] for r in rows], dtype=np.int64)
    perm = interleave(labels)
    images = (np.stack([rows[i][2] for i in perm]) if rows
              else np.zeros((0, size, size, 3), np.uint8))
    return images, labels[perm]


class TarSource:
    """An archive holding ``<top>/<train|val>/<wnid>/<file>`` members."""

    def __init__(self, path: Path, tag: str):
        self.paths = (path,)
        self.tag = tag

    def decode(self, size: int, split: str) -> dict:
        want = _SPLIT_DIR[split]

        def members():
            with tarfile.open(self.paths[0], "r:*") as tf:
                for m in tf:
                    parts = m.name.split("/")
                    if m.isfile() and len(parts) == 4 and parts[1] == want:
                        yield parts[2], parts[3], tf.extractfile(m).read

        images, labels = _decode_items(members(), size, str(self.paths[0]),
                                       f"decoding Imagenette {want} @{size}px")
        return {split: (images, labels)}


class FolderSource:
    def __init__(self, folder: Path, split: str):
        self.folder = folder
        sub = folder / _SPLIT_DIR[split]
        self.files = sorted(p for p in sub.glob("*/*") if p.is_file())
        self.paths = (sub,)
        listing = "\n".join(f"{p.parent.name}/{p.name}:{p.stat().st_size}" for p in self.files)
        # loose files have no published checksum: key the cache on the listing instead
        self.tag = f"folder-{folder.name}-{zlib.crc32(listing.encode()):08x}"

    def decode(self, size: int, split: str) -> dict:
        items = ((p.parent.name, p.name, p.read_bytes) for p in self.files)
        return {split: _decode_items(items, size, str(self.paths[0]),
                                     f"decoding Imagenette {_SPLIT_DIR[split]} @{size}px")}


class _Bound:
    """Adapter giving a source the ``decode(size)`` signature used by :func:`load`."""

    def __init__(self, src, split):
        self.src, self.split = src, split
        self.paths, self.tag = src.paths, src.tag

    def decode(self, size: int) -> dict:
        return self.src.decode(size, self.split)


def resolve(name: str, split: str, roots, size: int):
    for px in _preference(size):
        path = find_file(OFFICIAL[px], roots)
        if path is not None:
            verify(path, OFFICIAL[px])
            return _Bound(TarSource(path, OFFICIAL[px].filename.split(".")[0]), split)
    path = find_file(SHARED[split], roots)
    if path is not None:
        verify(path, SHARED[split])
        return _Bound(TarSource(path, "thunderinfy-224"), split)
    for r in roots:
        for sub in _SUBDIRS:
            for fname in _FOLDERS:
                folder = Path(r) / sub / fname
                if (folder / _SPLIT_DIR[split]).is_dir():
                    src = FolderSource(folder, split)
                    expected = DATASETS["imagenette"].split_sizes[split]
                    if len(src.files) != expected:
                        raise DatasetFormatError(
                            f"{folder / _SPLIT_DIR[split]} holds {len(src.files)} files, "
                            f"Imagenette v2 {_SPLIT_DIR[split]} has {expected}")
                    return _Bound(src, split)
    spec = OFFICIAL[_preference(size)[0] if size <= 320 else 320]
    if not downloads_enabled():
        raise DatasetNotFoundError(missing_message(
            [spec, SHARED[split]], roots,
            "Either file works (or an extracted imagenette2-160/ folder); downloads are "
            "disabled (ONEBIT_NO_DOWNLOAD is set)"))
    path = locate(spec, roots)
    return _Bound(TarSource(path, spec.filename.split(".")[0]), split)
