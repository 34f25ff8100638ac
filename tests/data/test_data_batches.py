import numpy as np
import pytest
import torch

import onebit.data as data
from onebit.data.batches import Loader


@pytest.fixture(scope="module")
def mnist_test(datasets_root):
    return data.load("mnist", "test", root=datasets_root)


def test_loader_plain_batches_equal_normalize(datasets_root, mnist_test):
    x_all, y_all = mnist_test
    loader = data.make_loader("mnist", "test", 256, root=datasets_root, limit=1000)
    assert len(loader) == 4
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [256, 256, 256, 232]
    x, y = batches[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (256, 1, 28, 28)
    want = data.normalize(np.asarray(x_all[:256]), "mnist")
    np.testing.assert_allclose(x.numpy(), want, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(y.numpy(), y_all[:256])


def test_loader_normalize_numpy_and_torch_agree(mnist_test):
    x = np.array(mnist_test[0][:5])  # writable copy of the read-only map
    a = data.normalize(x, "mnist")
    b = data.normalize(torch.from_numpy(x), "mnist")
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(a, b.numpy(), atol=1e-6)
    ds = data.info("mnist")
    np.testing.assert_allclose(a[0, 0, 0, 0], (0 - ds.mean[0]) / ds.std[0], rtol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        data.normalize(x.astype(np.float32), "mnist")
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        data.normalize(x, "cifar10")


def test_loader_shuffle_per_epoch_deterministic(datasets_root):
    def order(seed, epoch):
        loader = data.make_loader("mnist", "test", 100, train=True, seed=seed, root=datasets_root)
        loader.set_epoch(epoch)
        return loader.indices()

    a = order(0, 0)
    assert sorted(a.tolist()) == list(range(10000))  # a permutation: every sample once
    np.testing.assert_array_equal(a, order(0, 0))
    assert not np.array_equal(a, order(0, 1))
    assert not np.array_equal(a, order(1, 0))


def test_loader_train_batches_reproducible(datasets_root, cifar_test):
    def first(seed):
        loader = data.make_loader("cifar10", "test", 64, train=True, seed=seed, root=datasets_root)
        loader.set_epoch(3)
        return next(iter(loader))

    (x1, y1), (x2, y2), (x3, _) = first(5), first(5), first(6)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    assert x1.shape == (64, 3, 32, 32) and torch.isfinite(x1).all()


def test_loader_augmented_batch_is_crop_flip_of_source(datasets_root, cifar_test):
    x_all, _ = cifar_test
    loader = data.make_loader("cifar10", "test", 32, train=True, seed=0, root=datasets_root)
    idx = loader.indices()[:32]
    x, y = next(iter(loader))
    np.testing.assert_array_equal(y.numpy(), cifar_test[1][idx])
    ds = data.info("cifar10")
    mean = torch.tensor(ds.mean).view(3, 1, 1)
    std = torch.tensor(ds.std).view(3, 1, 1)
    pixels = ((x * std + mean) * 255).round()
    src = torch.from_numpy(np.asarray(x_all[idx])).permute(0, 3, 1, 2).float()
    padded = torch.nn.functional.pad(src, (4, 4, 4, 4))
    for i in range(4):
        ok = any(torch.equal(pixels[i], w) or torch.equal(pixels[i], w.flip(-1))
                 for dy in range(9) for dx in range(9)
                 for w in [padded[i, :, dy:dy + 32, dx:dx + 32]])
        assert ok, f"batch sample {i} is not a padded crop (+flip) of image {idx[i]}"


def test_loader_distributed_shards_cover_epoch():
    images = np.zeros((10, 4, 4, 1), np.uint8)
    labels = np.arange(10, dtype=np.int64) % 10
    ds = data.info("mnist")
    shards = [Loader(images, labels, ds, 2, shuffle=True, seed=3, rank=r, world_size=3)
              for r in range(3)]
    parts = [s.indices() for s in shards]
    assert all(len(p) == 4 for p in parts) and all(len(s) == 2 for s in shards)
    assert set(np.concatenate(parts).tolist()) == set(range(10))
    with pytest.raises(ValueError, match="rank"):
        Loader(images, labels, ds, 2, rank=3, world_size=3)


def test_loader_drop_last_and_bad_args(datasets_root):
    loader = data.make_loader("mnist", "test", 300, root=datasets_root, limit=1000, drop_last=True)
    assert len(loader) == 3 and sum(len(y) for _, y in loader) == 900
    with pytest.raises(ValueError, match="batch_size"):
        data.make_loader("mnist", "test", 0, root=datasets_root)
    with pytest.raises(ValueError, match="limit"):
        data.make_loader("mnist", "test", 8, root=datasets_root, limit=0)


def test_loader_imagenette_train_policy(datasets_root, imagenette_val64):
    loader = data.make_loader("imagenette", "val", 16, train=True, root=datasets_root, limit=64)
    x, y = next(iter(loader))
    assert x.shape == (16, 3, 64, 64) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
