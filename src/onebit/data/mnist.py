"""MNIST and Fashion-MNIST from the four official IDX .gz files per dataset.

Accepted copies: the official files (MD5 of the .gz as published) and any re-compressed copy
with the official content (MD5 of the decompressed file, e.g. Debian's
``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist``).
"""
from __future__ import annotations

import numpy as np

from onebit.data.errors import DatasetFormatError
from onebit.data.idx import read_idx
from onebit.data.sources import FileSpec, locate

_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "http://yann.lecun.com/exdb/mnist/")
_FASHION_URLS = ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                 "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")

# filename: (md5 of the official .gz, md5 of the decompressed IDX file, size of the .gz)
_MNIST = {
    "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb", 9912422),
    "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624", 28881),
    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea", 1648877),
    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637", 4542),
}
# Fashion-MNIST: upstream .gz MD5s and the Debian package's (headers differ, content equal).
_FASHION = {
    "train-images-idx3-ubyte.gz": (("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "cf8536b0aa1a6ac5fa3f23001093305c"), "f4a8712d7a061bf5bd6d2ca38dc4d50a", 26421880),
    "train-labels-idx1-ubyte.gz": (("25c81989df183df01b3e8a0aad5dffbe", "10bea18fdb374794d4bb42e356e600c9"), "9018921c3c673c538a1fc5bad174d6f9", 29515),
    "t10k-images-idx3-ubyte.gz": (("bef4ecab320f06d8554ea6380940ec79", "f78720b4224f21cce2f2ccf2d7a94c9a"), "8181f5470baa50b63fa0f6fddb340f0a", 4422102),
    "t10k-labels-idx1-ubyte.gz": (("bb300cfdad3c16e7a12a480ee83cd310", "0d30e22e447f3c33dab9ed536400ac01"), "15d484375f8d13e6eb1aabb0c3f46965", 5148),
}


def _specs(name: str) -> dict[str, FileSpec]:
    if name == "mnist":
        return {f: FileSpec(f, (gz,), (raw,), size, tuple(u + f for u in _MNIST_URLS),
                            subdirs=("mnist", "MNIST/raw", "MNIST", ""), download_subdir="mnist")
                for f, (gz, raw, size) in _MNIST.items()}
    # Fashion-MNIST shares MNIST's file names, so it is never searched at a root's top level.
    return {f: FileSpec(f, gz, (raw,), size, tuple(u + f for u in _FASHION_URLS),
                        subdirs=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw",
                                 "FashionMNIST", "fashion"),
                        download_subdir="fashion-mnist",
                        system_dirs=("/usr/share/datasets/fashion-mnist",))
            for f, (gz, raw, size) in _FASHION.items()}


SPECS = {"mnist": _specs("mnist"), "fashion-mnist": _specs("fashion-mnist")}


class IdxSource:
    """The located, verified pair of IDX files of one split."""

    tag = "idx"

    def __init__(self, name: str, split: str, roots):
        prefix = "train" if split == "train" else "t10k"
        specs = SPECS[name]
        self.name, self.split = name, split
        self.images_path = locate(specs[f"{prefix}-images-idx3-ubyte.gz"], roots)
        self.labels_path = locate(specs[f"{prefix}-labels-idx1-ubyte.gz"], roots)
        self.paths = (self.images_path, self.labels_path)

    def decode(self, size: int) -> dict:
        images = read_idx(self.images_path)
        labels = read_idx(self.labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetFormatError(
                f"{self.images_path}: images {images.shape} do not match labels {labels.shape}")
        return {self.split: (np.ascontiguousarray(images[..., None], dtype=np.uint8),
                             labels.astype(np.int64))}


def resolve(name: str, split: str, roots, size: int) -> IdxSource:
    return IdxSource(name, split, roots)
