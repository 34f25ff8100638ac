import pytest
import torch

from onebit.data import augment
from onebit.data.registry import info

SEED = 1234


def _close(a, b, tol):
    # plain max-abs check: torch.testing.assert_close costs ~4 s of lazy imports on first use
    assert a.shape == b.shape
    err = (a - b).abs().max().item()
    assert err <= tol, f"max abs error {err} > {tol}"


def _batch(n=6, c=3, h=8, w=8, dtype=torch.uint8):
    g = torch.Generator().manual_seed(SEED)
    return torch.randint(0, 256, (n, c, h, w), generator=g).to(dtype)


def test_augment_flip_twice_is_identity():
    x = _batch()
    assert torch.equal(augment.hflip(augment.hflip(x)), x)
    mask = torch.tensor([True, False, True, False, False, True])
    assert torch.equal(augment.hflip(augment.hflip(x, mask), mask), x)
    y = augment.hflip(x, mask)
    assert torch.equal(y[1], x[1]) and torch.equal(y[0], x[0].flip(-1))


def test_augment_random_crop_is_a_window_of_the_padded_image():
    x = _batch()
    g = torch.Generator().manual_seed(SEED)
    out = augment.random_crop(x, 2, g)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):  # brute force: some offset in [0, 4]^2 reproduces the crop
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if torch.equal(padded[i, :, dy:dy + 8, dx:dx + 8], out[i])]
        assert hits, f"sample {i} is not a window"
    assert torch.equal(augment.random_crop(x, 0, g), x)
    assert augment.random_crop(x, 4, g, size=6).shape == (6, 3, 6, 6)
    with pytest.raises(ValueError, match="cannot crop"):
        augment.random_crop(x, 0, g, size=9)


def test_augment_deterministic_with_seed():
    x = _batch(n=32, h=16, w=16)
    ds = info("cifar10")
    for name in ["crop+flip", "rrc"]:
        fn = augment.get_policy(name, ds, train=True)
        a = fn(x, torch.Generator().manual_seed(7))
        b = fn(x, torch.Generator().manual_seed(7))
        c = fn(x, torch.Generator().manual_seed(8))
        assert torch.equal(a, b), name
        assert not torch.equal(a, c), name


def test_augment_random_resized_crop_identity_and_flip():
    x = _batch(h=12, w=12).float()
    g = torch.Generator().manual_seed(SEED)
    same = augment.random_resized_crop(x, 12, g, scale=(1, 1), ratio=(1, 1), flip_p=0.0)
    _close(same, x, 1e-3)  # float32 grid rounding on the 0..255 scale
    flipped = augment.random_resized_crop(x, 12, g, scale=(1, 1), ratio=(1, 1), flip_p=1.0)
    _close(flipped, x.flip(-1), 1e-3)  # float32 grid rounding on the 0..255 scale
    out = augment.random_resized_crop(_batch(h=12, w=12), 5, g)
    assert out.shape == (6, 3, 5, 5) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 255


def test_augment_random_resized_crop_zooms_in():
    # a crop of at most half the area of a left-dark/right-bright image: many samples see only
    # one side, which the full image resized never does
    x = torch.zeros(64, 1, 16, 16)
    x[..., 8:] = 255
    out = augment.random_resized_crop(x, 8, torch.Generator().manual_seed(SEED),
                                      scale=(0.1, 0.2), flip_p=0.0)
    one_sided = ((out.amax(dim=(1, 2, 3)) < 1) | (out.amin(dim=(1, 2, 3)) > 254)).sum()
    assert one_sided > 10


def test_augment_policy_resolution():
    ds = info("mnist")
    x = _batch(c=1)
    assert augment.get_policy(None, ds, train=True)(x, None) is x  # digits: no augmentation
    assert augment.get_policy(None, ds, train=False)(x, None) is x
    custom = augment.get_policy(lambda t, g: t + 1, ds, train=False)
    assert torch.equal(custom(x, None), x + 1)
    with pytest.raises(ValueError, match="unknown augment 'cutmix'"):
        augment.get_policy("cutmix", ds, train=True)
    with pytest.raises(ValueError, match="NCHW"):
        augment.hflip(torch.zeros(3, 4, 4))


def test_augment_random_resized_crop_equals_grid_sample():
    # the separable implementation is the affine_grid + grid_sample resampling, exactly
    x = _batch(n=16, h=20, w=20)
    theta = augment.rrc_params(16, torch.Generator().manual_seed(SEED))
    out = augment.random_resized_crop(x, 11, theta=theta)
    grid = torch.nn.functional.affine_grid(theta.float(), (16, 3, 11, 11), align_corners=False)
    ref = torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear",
                                          padding_mode="border", align_corners=False)
    _close(out, ref, 5e-3)
    assert (theta[:, 0, 0] < 0).any() and (theta[:, 0, 0] > 0).any()  # both flip states drawn
