"""DistributedDataParallel glue: the trainer runs unchanged under ``torchrun``.

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; when they are present the process
group is initialised (NCCL on CUDA, Gloo on CPU), the model is wrapped in
``DistributedDataParallel``, each rank iterates its own slice of the shuffled training set
(``onebit.data.make_loader(rank=, world_size=)``, the ``DistributedSampler`` convention: equal
step counts on every rank), and only rank 0 logs, evaluates and writes checkpoints. Model code never changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"environment variable {name}={v!r} is not an integer") from None


def setup(use_cuda: bool) -> DistContext:
    """Join the process group described by torchrun's environment (no-op without it)."""
    world = _env_int("WORLD_SIZE")
    rank = _env_int("RANK")
    if world is None or rank is None:
        return DistContext()
    local = _env_int("LOCAL_RANK") or 0
    if not (0 <= rank < world):
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://",
                                rank=rank, world_size=world)
        owns = True
    return DistContext(rank=rank, world_size=world, local_rank=local, enabled=True, owns_group=owns)


def teardown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else ctx.local_rank] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def all_reduce_sum(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    if not ctx.enabled or ctx.world_size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled and ctx.world_size > 1:
        dist.barrier()
