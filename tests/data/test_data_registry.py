import numpy as np
import pytest

import onebit
import onebit.data as data
from onebit.data.registry import canonical_name, canonical_split


def test_registry_exports_interface():
    for name in ["load", "info", "make_loader", "normalize", "DATASETS", "DatasetInfo",
                 "DatasetNotFoundError", "ChecksumError"]:
        assert hasattr(data, name)
    assert issubclass(data.DatasetNotFoundError, onebit.OnebitError)
    assert issubclass(data.ChecksumError, onebit.OnebitError)
    assert set(data.DATASETS) == {"mnist", "fashion-mnist", "cifar10", "imagenette"}


@pytest.mark.parametrize("name,channels,size", [("mnist", 1, 28), ("fashion-mnist", 1, 28),
                                                ("cifar10", 3, 32), ("imagenette", 3, 64)])
def test_registry_info_fields(name, channels, size):
    ds = data.info(name)
    assert (ds.name, ds.num_classes, ds.channels, ds.image_size) == (name, 10, channels, size)
    assert len(ds.mean) == len(ds.std) == channels
    assert len(ds.class_names) == 10
    assert all(0 < s < 1 for s in ds.std)


def test_registry_aliases_and_errors():
    assert canonical_name("CIFAR-10") == "cifar10"
    assert canonical_name("fashion_mnist") == "fashion-mnist"
    assert canonical_split("val") == "test"
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        data.info("svhn")
    with pytest.raises(ValueError, match="unknown split"):
        canonical_split("dev")
    assert data.info("imagenette", size=128).image_size == 128
    with pytest.raises(ValueError, match="only Imagenette is resized"):
        data.info("cifar10", size=64)
    with pytest.raises(ValueError, match="between 8 and 1024"):
        data.info("imagenette", size=4)


def _stats(images):
    """Exact per-channel mean and std on the [0, 1] scale, from 256-bin histograms."""
    flat = np.asarray(images).reshape(-1, images.shape[-1])
    v = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(flat.shape[1]):
        h = np.bincount(flat[:, c], minlength=256).astype(np.float64)
        m = (h * v).sum() / h.sum()
        mean.append(m)
        std.append(np.sqrt((h * (v - m) ** 2).sum() / h.sum()))
    return np.array(mean), np.array(std)


@pytest.mark.parametrize("name,tol", [("mnist", 1e-3), ("fashion-mnist", 1e-3),
                                      ("cifar10", 5e-3)])
def test_registry_normalization_matches_train_statistics(datasets_root, name, tol):
    # CIFAR-10 here is the JPEG q75 copy: smoothing lowers the std by ~0.002 (tolerance 5e-3)
    images, _ = data.load(name, "train", root=datasets_root)
    mean, std = _stats(images)
    ds = data.info(name)
    np.testing.assert_allclose(mean, ds.mean, atol=tol)
    np.testing.assert_allclose(std, ds.std, atol=tol)


def test_registry_imagenette_normalization_matches_val_statistics(imagenette_val64):
    # constants are the train-split statistics at 64 px; val agrees to ~0.01
    mean, std = _stats(imagenette_val64[0])
    ds = data.info("imagenette")
    np.testing.assert_allclose(mean, ds.mean, atol=0.015)
    np.testing.assert_allclose(std, ds.std, atol=0.015)


def test_registry_import_does_not_pull_torch():
    # the runtime side (eval, bench) loads and normalizes data without torch
    import subprocess
    import sys

    code = ("import sys, onebit.data as d; d.info('cifar10'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
