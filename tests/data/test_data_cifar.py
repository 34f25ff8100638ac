import io
import pickle
import tarfile

import numpy as np
import pytest

import onebit.data as data
from onebit.data import cifar

JPEG = "cifar10/cifar10-jpeg-yoongikim.tar.xz"


def test_cifar_counts_shapes_dtypes(datasets_root, cifar_test):
    x, y = cifar_test
    assert x.shape == (10000, 32, 32, 3) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == [1000] * 10
    xtr, ytr = data.load("cifar10", "train", root=datasets_root)
    assert xtr.shape == (50000, 32, 32, 3) and xtr.dtype == np.uint8
    assert np.bincount(ytr, minlength=10).tolist() == [5000] * 10


def test_cifar_jpeg_order_is_round_robin(datasets_root, cifar_test):
    # documented order of the JPEG copy: sample i has class i % 10 and is file i // 10
    _, y = cifar_test
    np.testing.assert_array_equal(y, np.arange(10000) % 10)
    _, ytr = data.load("cifar10", "train", root=datasets_root)
    np.testing.assert_array_equal(ytr[:1000], np.arange(1000) % 10)


def test_cifar_first_images_match_independent_decode(datasets_root, cifar_test):
    from PIL import Image

    x, _ = cifar_test
    want = {"cifar10-jpeg/test/airplane/0000.jpg": 0, "cifar10-jpeg/test/airplane/0001.jpg": 10,
            "cifar10-jpeg/test/automobile/0000.jpg": 1}
    got = {}
    with tarfile.open(datasets_root / JPEG, "r:xz") as tf:
        for m in tf:  # test/ members come first in the archive: stop early
            if m.name in want:
                got[m.name] = np.asarray(Image.open(io.BytesIO(tf.extractfile(m).read()))
                                         .convert("RGB"))
            if len(got) == len(want):
                break
    assert len(got) == 3
    for name, i in want.items():
        np.testing.assert_array_equal(x[i], got[name], err_msg=name)


def _fake_batches(rng):
    batches = {}
    for i, name in enumerate([*cifar._TRAIN_BATCHES, "test_batch"]):
        data_ = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        batches[name] = {b"data": data_, b"labels": [i, (i + 1) % 10, 2, 3],
                         b"batch_label": name.encode()}
    return batches


def _write_tarball(path, batches):
    with tarfile.open(path, "w:gz") as tf:
        for name, d in batches.items():
            raw = pickle.dumps(d, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))


def test_cifar_python_tarball_format(tmp_path):
    # the official format: rows of 1024 R, 1024 G, 1024 B bytes; train = data_batch_1..5
    batches = _fake_batches(np.random.default_rng(0))
    path = tmp_path / "cifar-10-python.tar.gz"
    _write_tarball(path, batches)
    out = cifar.PythonTarballSource(path).decode(32)
    x, y = out["train"]
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert y[:8].tolist() == [0, 1, 2, 3, 1, 2, 2, 3]
    row = batches["data_batch_2"][b"data"][1]
    np.testing.assert_array_equal(x[5, :, :, 0], row[:1024].reshape(32, 32))
    np.testing.assert_array_equal(x[5, :, :, 2], row[2048:].reshape(32, 32))
    xt, yt = out["test"]
    np.testing.assert_array_equal(xt[3], batches["test_batch"][b"data"][3].reshape(3, 32, 32)
                                  .transpose(1, 2, 0))


def test_cifar_python_tarball_preferred_and_verified(tmp_path, tmp_cache, monkeypatch):
    _write_tarball(tmp_path / "cifar-10-python.tar.gz", _fake_batches(np.random.default_rng(1)))
    # the fake has its own MD5, so resolve() must reject it as a checksum error
    with pytest.raises(data.ChecksumError, match="c58f30108f718f92721af3b95e74349a"):
        data.load("cifar10", "test", root=tmp_path)


def test_cifar_missing_names_both_copies(tmp_path, tmp_cache):
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.load("cifar10", "train", root=tmp_path)
    msg = str(e.value)
    assert "cifar-10-python.tar.gz" in msg and "cifar10-jpeg-yoongikim.tar.xz" in msg
    assert str(tmp_path / "cifar10") in msg and "ONEBIT_NO_DOWNLOAD" in msg


@pytest.mark.slow  # writes and re-reads 180 MB
def test_cifar_official_batches_round_trip_through_load(cifar_train, cifar_test, tmp_path,
                                                        tmp_cache, monkeypatch):
    # write the JPEG copy's pixels in the official batch format (an extracted
    # cifar-10-batches-py/ folder), then load() it: same arrays back, official order kept
    import hashlib

    xtr, ytr = cifar_train
    xte, yte = cifar_test
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    md5s = {}
    parts = {f"data_batch_{i + 1}": (xtr[i * 10000:(i + 1) * 10000], ytr[i * 10000:(i + 1) * 10000])
             for i in range(5)}
    parts["test_batch"] = (xte, yte)
    for name, (x, y) in parts.items():
        rows = np.asarray(x).transpose(0, 3, 1, 2).reshape(len(x), 3072)  # NHWC -> CHW rows
        raw = pickle.dumps({b"data": rows, b"labels": [int(v) for v in y]}, protocol=4)
        (folder / name).write_bytes(raw)
        md5s[name] = hashlib.md5(raw).hexdigest()
    monkeypatch.setattr(cifar, "_BATCHES", md5s)
    x2, y2 = data.load("cifar10", "train", root=tmp_path)
    np.testing.assert_array_equal(x2, xtr)
    np.testing.assert_array_equal(y2, ytr)
    xt2, yt2 = data.load("cifar10", "test", root=tmp_path)
    np.testing.assert_array_equal(xt2, xte)
    # a damaged batch file is caught by its checksum
    (folder / "data_batch_3").write_bytes(b"\x80junk")
    with pytest.raises(data.ChecksumError, match="data_batch_3"):
        data.load("cifar10", "train", root=tmp_path)
