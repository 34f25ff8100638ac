import hashlib
import io
import os
import shutil

import numpy as np
import pytest

import onebit.data as data
from onebit.data import sources
from onebit.data.sources import FileSpec

LABELS = "t10k-labels-idx1-ubyte.gz"
IMAGES = "t10k-images-idx3-ubyte.gz"


def _copy_mnist_test(datasets_root, dest):
    (dest / "mnist").mkdir(parents=True)
    for f in (LABELS, IMAGES):
        shutil.copy(datasets_root / "mnist" / f, dest / "mnist" / f)
    return dest / "mnist"


def test_sources_checksum_failure_names_file_expected_actual(datasets_root, tmp_path, tmp_cache):
    folder = _copy_mnist_test(datasets_root, tmp_path / "root")
    p = folder / LABELS
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    actual = hashlib.md5(bytes(raw)).hexdigest()
    with pytest.raises(data.ChecksumError) as e:
        data.load("mnist", "test", root=tmp_path / "root")
    msg = str(e.value)
    assert str(p) in msg and "ec29112dd5afa0611ce80d1b7f02629c" in msg and actual in msg
    assert e.value.actual == actual and e.value.path == str(p)


def test_sources_missing_dataset_names_file_and_place(tmp_path, tmp_cache):
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.load("mnist", "test", root=tmp_path)
    msg = str(e.value)
    assert IMAGES in msg and str(tmp_path / "mnist") in msg
    assert isinstance(e.value, FileNotFoundError)


def test_sources_data_roots_path_list(tmp_path, tmp_cache, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("ONEBIT_DATA", os.pathsep.join([str(a), str(b)]))
    assert sources.data_roots() == [a, b, tmp_cache]
    assert sources.data_roots(tmp_path) == [tmp_path, tmp_cache]
    monkeypatch.delenv("ONEBIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.cache_dir() == tmp_path / "xdg" / "onebit"


def test_sources_found_in_second_root(datasets_root, tmp_path, tmp_cache, monkeypatch):
    _copy_mnist_test(datasets_root, tmp_path / "b")
    monkeypatch.setenv("ONEBIT_DATA", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    x, y = data.load("mnist", "test")
    assert x.shape == (10000, 28, 28, 1)


def test_sources_verification_cached_by_path_size_mtime(tmp_path, tmp_cache, monkeypatch):
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello")
    spec = FileSpec("f.bin", (hashlib.md5(b"hello").hexdigest(),))
    sources.verify(p, spec)
    calls = []
    real = sources.md5_file
    monkeypatch.setattr(sources, "md5_file", lambda *a, **k: calls.append(a) or real(*a, **k))
    sources.verify(p, spec)
    assert calls == []  # second verification read the digest from verified.json
    p.write_bytes(b"hellp")  # same size, new mtime/content: hashed again, and rejected
    os.utime(p, ns=(1, 1))
    with pytest.raises(data.ChecksumError):
        sources.verify(p, spec)
    assert len(calls) == 1


class _FakeResponse(io.BytesIO):
    def __init__(self, payload):
        super().__init__(payload)
        self.length = len(payload)


def test_sources_download_file_url(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.delenv("ONEBIT_NO_DOWNLOAD")
    payload = np.random.default_rng(0).bytes(3_000_000)
    src = tmp_path / "served" / "blob.bin"
    src.parent.mkdir()
    src.write_bytes(payload)
    spec = FileSpec("blob.bin", (hashlib.md5(payload).hexdigest(),),
                    urls=("file:///nonexistent/blob.bin", src.as_uri()),
                    subdirs=("things",), download_subdir="things")
    path = sources.locate(spec, sources.data_roots(tmp_path / "empty"))
    assert path == tmp_cache / "things" / "blob.bin" and path.read_bytes() == payload
    assert sorted(os.listdir(path.parent)) == ["blob.bin"]  # no temporary leftovers
    assert sources.locate(spec, sources.data_roots(tmp_path / "empty")) == path  # found now


def test_sources_download_bad_checksum_leaves_nothing(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.delenv("ONEBIT_NO_DOWNLOAD")
    monkeypatch.setattr(sources, "_open_url", lambda url, timeout=30.0: _FakeResponse(b"evil"))
    spec = FileSpec("x.gz", ("0" * 32,), urls=("https://example.invalid/x.gz",),
                    download_subdir="d")
    with pytest.raises(data.ChecksumError, match="downloaded file rejected"):
        sources.locate(spec, [tmp_path])
    assert not (tmp_cache / "d").exists() or os.listdir(tmp_cache / "d") == []


def test_sources_unreachable_network_is_not_found(tmp_path, tmp_cache, monkeypatch):
    import urllib.error

    monkeypatch.delenv("ONEBIT_NO_DOWNLOAD")

    def offline(url, timeout=30.0):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(sources, "_open_url", offline)
    spec = FileSpec("x.gz", ("0" * 32,), urls=("https://example.invalid/x.gz",),
                    download_subdir="d")
    with pytest.raises(data.DatasetNotFoundError, match="network is unreachable"):
        sources.locate(spec, [tmp_path])


def test_sources_load_downloads_missing_mnist(datasets_root, tmp_path, tmp_cache, monkeypatch):
    # the whole path: nothing on disk, a fake network serving the official bytes
    monkeypatch.delenv("ONEBIT_NO_DOWNLOAD")
    served = []

    def fake_open(url, timeout=30.0):
        served.append(url)
        return _FakeResponse((datasets_root / "mnist" / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(sources, "_open_url", fake_open)
    x, y = data.load("mnist", "test", root=tmp_path / "empty")
    assert x.shape == (10000, 28, 28, 1) and y[:3].tolist() == [7, 2, 1]
    assert sorted(u.rsplit("/", 1)[1] for u in served) == [IMAGES, LABELS]
    assert (tmp_cache / "mnist" / IMAGES).is_file()


def test_sources_no_download_env_refuses(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setattr(sources, "_open_url", lambda *a, **k: pytest.fail("network used"))
    with pytest.raises(data.DatasetNotFoundError, match="ONEBIT_NO_DOWNLOAD"):
        data.load("mnist", "test", root=tmp_path)
