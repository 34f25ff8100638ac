import pytest

from onebit.train import distributed as ddp


def test_setup_without_torchrun_env_is_single_process(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ctx = ddp.setup(use_cuda=False)
    assert not ctx.enabled and ctx.is_main and ctx.world_size == 1


def test_setup_rejects_rank_outside_world(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK=3"):
        ddp.setup(use_cuda=False)


def test_train_under_torchrun_env_world_one_wraps_ddp(monkeypatch, tmp_path, small_config):
    """RANK/WORLD_SIZE set as torchrun does: a Gloo group of one, the model wrapped in DDP."""
    import socket

    from torch.nn.parallel import DistributedDataParallel

    import torch.distributed as dist
    from onebit.train import train

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(k, v)
    import onebit.data

    wrapped, shards = [], []
    real_wrap, real_loader = ddp.wrap, onebit.data.make_loader

    def loader_spy(*a, **kw):
        if a[1] == "train":
            shards.append((kw.get("rank"), kw.get("world_size")))
        return real_loader(*a, **kw)

    monkeypatch.setattr(onebit.data, "make_loader", loader_spy)

    def spy(model, ctx, device):
        net = real_wrap(model, ctx, device)
        wrapped.append(isinstance(net, DistributedDataParallel))
        return net

    monkeypatch.setattr(ddp, "wrap", spy)
    r = train(small_config(tmp_path, epochs=1, limit_train=128, limit_test=64))
    assert wrapped == [True]
    assert shards == [(0, 1)]  # the loader is sharded by rank
    assert len(r.history) == 1 and (tmp_path / "ckpt.pt").is_file()
    assert not dist.is_initialized()  # the group we created is torn down
