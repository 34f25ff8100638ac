"""The datasets onebit knows: names, shapes, classes and normalization constants.

Mean and std are per channel on the [0, 1] pixel scale, used as ``(u8/255 - mean) / std``.
They are the usual published training-set statistics (MNIST 0.1307/0.3081; Fashion-MNIST
0.2860/0.3530; CIFAR-10 per-channel population statistics).  For Imagenette they were measured
on its train split (shared 224 px copy resized to 64 px); the ImageNet constants
(0.485, 0.456, 0.406) / (0.229, ...) are off by up to 0.045 in std on Imagenette.
``tests/data`` recomputes all of them from the real files and checks they agree.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["DatasetInfo", "DATASETS", "info", "canonical_name", "canonical_split"]


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of one dataset.

    ``image_size`` is the side of the square images :func:`onebit.data.load` returns
    (for Imagenette: the default resize target, 64, or the ``size`` asked for).
    ``split_sizes`` maps split name to its number of samples.
    """

    name: str
    num_classes: int
    channels: int
    image_size: int
    mean: tuple
    std: tuple
    class_names: tuple
    split_sizes: dict = dataclasses.field(default_factory=dict, compare=False)
    resizable: bool = False

    @property
    def shape(self) -> tuple:
        """(H, W, C) of one image as loaded."""
        return (self.image_size, self.image_size, self.channels)


_IMAGENETTE_WNIDS = (
    ("n01440764", "tench"),
    ("n02102040", "English springer"),
    ("n02979186", "cassette player"),
    ("n03000684", "chain saw"),
    ("n03028079", "church"),
    ("n03394916", "French horn"),
    ("n03417042", "garbage truck"),
    ("n03425413", "gas pump"),
    ("n03445777", "golf ball"),
    ("n03888257", "parachute"),
)
IMAGENETTE_WNIDS = tuple(w for w, _ in _IMAGENETTE_WNIDS)  # sorted: label id = index

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", 10, 1, 28, (0.1307,), (0.3081,), tuple(str(i) for i in range(10)),
        {"train": 60000, "test": 10000},
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", 10, 1, 28, (0.2860,), (0.3530,),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"),
        {"train": 60000, "test": 10000},
    ),
    "cifar10": DatasetInfo(
        "cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"),
        {"train": 50000, "test": 10000},
    ),
    "imagenette": DatasetInfo(
        "imagenette", 10, 3, 64, (0.4625, 0.4579, 0.4301), (0.2685, 0.2654, 0.2888),
        tuple(n for _, n in _IMAGENETTE_WNIDS),
        {"train": 9469, "test": 3925}, resizable=True,
    ),
}

_ALIASES = {
    "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
    "cifar-10": "cifar10", "cifar_10": "cifar10", "imagenette2": "imagenette",
}
_SPLIT_ALIASES = {"train": "train", "test": "test", "val": "test", "valid": "test",
                  "validation": "test", "t10k": "test"}


def canonical_name(name: str) -> str:
    """Registry name of ``name`` (case-insensitive; a few aliases such as ``cifar-10``)."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return key


def canonical_split(split: str) -> str:
    """``"train"`` or ``"test"`` (Imagenette's ``"val"`` is its test split)."""
    key = str(split).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test' ('val' = 'test')")
    return _SPLIT_ALIASES[key]


def info(name: str, size: int | None = None) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; for Imagenette ``size`` sets ``image_size``."""
    ds = DATASETS[canonical_name(name)]
    size = check_size(ds, size)
    if size != ds.image_size:
        ds = dataclasses.replace(ds, image_size=size)
    return ds


def check_size(ds: DatasetInfo, size) -> int:
    """Validate a requested image size for ``ds``; returns the size to use."""
    if size is None:
        return ds.image_size
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, got {size!r}")
    if not ds.resizable:
        if size != ds.image_size:
            raise ValueError(
                f"{ds.name} images are {ds.image_size}x{ds.image_size}; size={size} is not "
                "supported (only Imagenette is resized)")
        return size
    if not 8 <= size <= 1024:
        raise ValueError(f"size must be between 8 and 1024 pixels, got {size}")
    return size
