import pytest
import torch

from onebit.prune import PruneError
from onebit.prune.granularity import group_index, group_sizes


def test_word_groups_conv_cover_64_channels_at_one_tap():
    # Cin = 130: words [0,64), [64,128), [128,130) -- the last word is partial
    idx, n = group_index((2, 130, 3, 3), "word")
    assert n == 2 * 3 * 3 * 3
    sizes = group_sizes(idx, n)
    assert sorted(set(sizes.tolist())) == [2, 64]
    for o, c, i, j in [(0, 0, 0, 0), (1, 63, 2, 1), (1, 64, 0, 2), (0, 129, 1, 1)]:
        same = idx == idx[o, c, i, j]
        members = same.nonzero().tolist()
        assert all(m[0] == o and m[2] == i and m[3] == j and m[1] // 64 == c // 64 for m in members)
        assert len(members) == (2 if c >= 128 else 64)


def test_word_groups_dense_follow_engine_nhwc_flatten():
    # dense layer after flattening (C=3, H=2, W=2) as PyTorch does (NCHW); the engine packs
    # NHWC: index (h*W + w)*C + c, 64 per word. Make C*H*W = 3*5*10 = 150 -> 3 words.
    chw = (3, 5, 10)
    idx, n = group_index((4, 150), "word", chw)
    assert n == 4 * 3
    for f in range(150):
        c, s = divmod(f, 50)
        assert idx[1, f] == 1 * 3 + (s * 3 + c) // 64
    flat, _ = group_index((4, 150), "word")
    assert flat[0].tolist() == [f // 64 for f in range(150)]


def test_channel_and_weight_groups():
    idx, n = group_index((5, 3, 3, 3), "channel")
    assert n == 5 and torch.equal(idx[:, 0, 0, 0], torch.arange(5))
    idx, n = group_index((5, 7), "weight")
    assert n == 35 and idx.unique().numel() == 35


def test_block_groups_conv_are_8_outputs_x_word_x_tap():
    # Cout = 20: blocks [0,8), [8,16), [16,20); Cin = 130: words of 64, 64, 2 channels
    idx, n = group_index((20, 130, 3, 3), "block")
    assert n == 3 * 3 * 3 * 3
    sizes = group_sizes(idx, n)
    assert sorted(set(sizes.tolist())) == [2 * 4, 2 * 8, 64 * 4, 64 * 8]
    for o, c, i, j in [(0, 0, 0, 0), (7, 63, 2, 1), (8, 64, 0, 2), (19, 129, 1, 1)]:
        members = (idx == idx[o, c, i, j]).nonzero().tolist()
        assert all(m[0] // 8 == o // 8 and m[1] // 64 == c // 64 and (m[2], m[3]) == (i, j) for m in members)
        assert len(members) == (2 if c >= 128 else 64) * (4 if o >= 16 else 8)
    # a block is the union of the word groups of its 8 channels
    word, _ = group_index((20, 130, 3, 3), "word")
    for g in range(n):
        words = word[idx == g].unique()
        assert words.numel() == (4 if g >= 2 * 3 * 3 * 3 else 8)


def test_block_groups_dense_follow_engine_nhwc_flatten():
    chw = (3, 5, 10)
    idx, n = group_index((12, 150), "block", chw)
    assert n == 2 * 3
    word, _ = group_index((12, 150), "word", chw)
    for o in range(12):
        assert torch.equal(idx[o], (o // 8) * 3 + word[o] - o * 3)


def test_granularity_errors():
    with pytest.raises(PruneError, match="granularity"):
        group_index((2, 2), "tile")
    with pytest.raises(PruneError, match="does not match"):
        group_index((2, 10), "word", (3, 2, 2))


def test_word_blocks_list_the_kept_words(toy):
    from onebit.prune import Pruner
    from onebit.prune.granularity import is_word_structured, word_blocks

    model = toy()  # conv1 has Cin = 70: two words per tap, the second partial
    p = Pruner(model, "latent", "word", ratios={"conv1": 0.4}).prepare()
    p.prune()
    mask = model.conv1.weight_mask
    active = word_blocks(mask)
    assert active.shape == (24, 3, 3, 2)
    assert is_word_structured(mask)
    assert int((~active).sum()) == round(0.4 * 24 * 3 * 3 * 2)
    # a kept word keeps all its channels, a pruned word none
    assert torch.equal(mask[:, :64].bool().all(dim=1), active[..., 0])
    assert torch.equal(mask[:, 64:].bool().any(dim=1), active[..., 1])
    unstructured = torch.ones_like(mask)
    unstructured[0, 5, 1, 1] = 0
    assert not is_word_structured(unstructured)


def test_block_pruning_prunes_whole_tiles(toy):
    from onebit.prune import Pruner
    from onebit.prune.granularity import word_blocks

    model = toy()  # conv1: Cout 24 = 3 blocks, Cin 70 = 2 words, 3x3 taps -> 54 blocks
    p = Pruner(model, "latent", "block", ratios={"conv1": 0.3, "fc1": 0.5}).prepare()
    p.prune()
    active = word_blocks(model.conv1.weight_mask)  # (24, 3, 3, 2)
    tiles = active.view(3, 8, 3, 3, 2)
    # every 8-channel tile is all kept or all pruned at each (tap, word)
    assert torch.equal(tiles.all(dim=1), tiles.any(dim=1))
    assert int((~tiles.any(dim=1)).sum()) == round(0.3 * 54)
    fc = model.fc1.weight_mask  # (20, 256): blocks of 8 outputs x 64 features (NHWC order)
    assert p.achieved["fc1"] == pytest.approx(round(0.5 * 3 * 4) / 12)
    assert 0 < int((fc == 0).sum()) < fc.numel()
