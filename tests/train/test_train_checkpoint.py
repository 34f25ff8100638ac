import pytest
import torch

from onebit.train import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from onebit.train.checkpoint import REQUIRED_KEYS, rng_state, set_rng_state


def test_load_checkpoint_missing_file_names_path(tmp_path):
    p = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_checkpoint(p)


def test_load_checkpoint_rejects_foreign_object(tmp_path):
    p = tmp_path / "list.pt"
    torch.save([1, 2, 3], p)
    with pytest.raises(CheckpointError, match="not a onebit checkpoint"):
        read_checkpoint(p)


def test_load_checkpoint_rejects_missing_keys(tmp_path):
    p = tmp_path / "partial.pt"
    torch.save({"state_dict": {}}, p)
    with pytest.raises(CheckpointError, match="model_config"):
        read_checkpoint(p)


def test_load_checkpoint_rejects_garbage_bytes(tmp_path):
    p = tmp_path / "garbage.pt"
    p.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(p)


def test_save_checkpoint_requires_agreed_keys(tmp_path):
    with pytest.raises(CheckpointError, match="optimizer"):
        save_checkpoint(tmp_path / "x.pt", {k: None for k in REQUIRED_KEYS if k != "optimizer"})


def test_rng_state_roundtrip_replays_same_numbers():
    import random

    import numpy as np

    s = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(s)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_rng_state_survives_checkpoint_file(tmp_path):
    p = tmp_path / "rng.pt"
    torch.save({"rng": rng_state()}, p)
    expected = torch.rand(4)
    set_rng_state(torch.load(p, weights_only=True, map_location="cpu")["rng"])
    assert torch.equal(torch.rand(4), expected)
