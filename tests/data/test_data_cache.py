import json

import numpy as np
import pytest

import onebit.data as data
from onebit.data import cache


def _arrays():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, size=(7, 5, 5, 3), dtype=np.uint8),
            rng.integers(0, 10, size=7).astype(np.int64))


def test_cache_round_trip(tmp_cache):
    x, y = _arrays()
    assert cache.save("k", x, y)
    got = cache.load("k")
    assert got is not None
    np.testing.assert_array_equal(got[0], x)
    np.testing.assert_array_equal(got[1], y)
    assert got[0].dtype == np.uint8 and got[1].dtype == np.int64
    assert isinstance(got[0], np.memmap)  # a hit maps the file, no decode and no copy


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta", "version"])
def test_cache_corrupt_entry_is_not_trusted(tmp_cache, damage):
    x, y = _arrays()
    cache.save("k", x, y)
    img = cache.array_dir() / "k.images.npy"
    meta = cache.array_dir() / "k.json"
    if damage == "flip":
        raw = bytearray(img.read_bytes())
        raw[-10] ^= 1
        img.write_bytes(bytes(raw))
    elif damage == "truncate":
        img.write_bytes(img.read_bytes()[:-30])
    elif damage == "meta":
        meta.write_text("{not json")
    else:
        m = json.loads(meta.read_text())
        m["format_version"] = -1
        meta.write_text(json.dumps(m))
    assert cache.load("k") is None


def test_cache_corrupt_file_rebuilt_by_load(datasets_root, tmp_cache):
    x0, y0 = data.load("mnist", "test", root=datasets_root)
    x0, y0 = np.array(x0), np.array(y0)
    key = cache.cache_key("mnist", "test", 28, "idx")
    img = cache.array_dir() / f"{key}.images.npy"
    raw = bytearray(img.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    img.write_bytes(bytes(raw))
    x1, y1 = data.load("mnist", "test", root=datasets_root)
    np.testing.assert_array_equal(x1, x0)
    np.testing.assert_array_equal(y1, y0)
    assert cache.load(key) is not None  # rewritten


def test_cache_keys_separate_sizes_and_sources():
    keys = {cache.cache_key("imagenette", "test", s, t) for s in (64, 96)
            for t in ("thunderinfy-224", "imagenette2-160")}
    assert len(keys) == 4
    assert f"v{cache.FORMAT_VERSION}" in cache.cache_key("cifar10", "train", 32, "python")


def test_cache_unwritable_dir_still_loads(datasets_root, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ONEBIT_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="cannot write the array cache"):
        x, y = data.load("mnist", "test", root=datasets_root)
    assert x.shape == (10000, 28, 28, 1) and y[0] == 7


def test_cache_concurrent_loads_decode_once(datasets_root, tmp_cache, monkeypatch):
    # two threads miss the cache together; the lock lets only one decode, the other reads it
    import threading
    import time

    from onebit.data import mnist

    calls = []
    real = mnist.IdxSource.decode

    def counting(self, size):
        calls.append(1)
        time.sleep(0.3)  # keep the first decode running while the second thread misses
        return real(self, size)

    monkeypatch.setattr(mnist.IdxSource, "decode", counting)
    out = []
    threads = [threading.Thread(target=lambda: out.append(data.load("mnist", "test",
                                                                    root=datasets_root)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 2 and len(calls) == 1
    np.testing.assert_array_equal(out[0][0], out[1][0])
