import gzip
import os
import shutil

import numpy as np
import pytest

import onebit.data as data

# class counts from shared/datasets/README.md
MNIST_COUNTS = {"train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
                "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]}


@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_mnist_counts_shapes_dtypes(datasets_root, split, n):
    x, y = data.load("mnist", split, root=datasets_root)
    assert x.shape == (n, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (n,) and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == MNIST_COUNTS[split]


def test_mnist_first_images(datasets_root):
    x, y = data.load("mnist", "train", root=datasets_root)
    assert y[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training labels
    assert x[0].max() == 255 and x[0, :4, :4].max() == 0  # ink on a black background
    assert int(x[0].astype(np.int64).sum()) == 27525
    xt, yt = data.load("mnist", "test", root=datasets_root)
    assert yt[:5].tolist() == [7, 2, 1, 0, 4]


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Debian package dataset-fashion-mnist not installed")
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_mnist_fashion_from_debian_package(split, n, tmp_path):
    # an empty root: the files come from /usr/share/datasets/fashion-mnist, whose .gz MD5s differ
    # from upstream and are accepted through the MD5 of the decompressed content
    x, y = data.load("fashion-mnist", split, root=tmp_path)
    assert x.shape == (n, 28, 28, 1) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [n // 10] * 10
    assert y[0] == 9  # both splits start with an ankle boot


def test_mnist_recompressed_copy_accepted_by_raw_md5(datasets_root, tmp_path, tmp_cache):
    # same IDX content, different gzip header (mtime, level): the .gz MD5 differs, data equal
    root = tmp_path / "root"
    (root / "mnist").mkdir(parents=True)
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        raw = gzip.decompress((datasets_root / "mnist" / f).read_bytes())
        (root / "mnist" / f).write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
    x, y = data.load("mnist", "test", root=root)
    x0, y0 = data.load("mnist", "test", root=datasets_root)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_mnist_torchvision_layout(datasets_root, tmp_path, tmp_cache):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        shutil.copy(datasets_root / "mnist" / f, raw / f)
    x, y = data.load("mnist", "test", root=tmp_path)
    assert x.shape == (10000, 28, 28, 1) and y[0] == 7
