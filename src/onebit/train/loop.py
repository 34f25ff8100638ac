"""The training loop: ``train(config) -> TrainResult``.

One epoch = one pass over the (sharded) training loader with Adam + warmup/cosine, latent
weights clipped after every step, then validation on the test split. Rank 0 writes a
checkpoint after every epoch, so a run can resume from any epoch boundary and reach the same
state as an uninterrupted run: the loader's shuffle is seeded per epoch from (seed, epoch) and
the generator states travel in the checkpoint.

The device options (resident data, bf16 autocast, channels_last, torch.compile) are resolved
once by :mod:`onebit.train.accel`; the running loss and accuracy sums stay on the device. A run
can start from a checkpoint (``init``: fine-tuning, also of a pruned network) and fit its
number of epochs to a wall-clock budget (:mod:`onebit.train.budget`).
"""
from __future__ import annotations

import json
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import onebit
from onebit.train import accel as accel_mod
from onebit.train import distributed as ddp
from onebit.train.checkpoint import (CheckpointError, read_checkpoint, rng_state, save_checkpoint,
                                     set_rng_state)
from onebit.train.config import TrainConfig, TrainConfigError
from onebit.train.optim import make_optimizer
from onebit.train.schedule import make_scheduler


@dataclass
class TrainResult:
    """What a run produced: the trained model (unwrapped, in eval mode) and its metrics."""

    config: TrainConfig
    model: torch.nn.Module
    history: list[dict[str, Any]]
    test_accuracy: float
    train_seconds: float
    wall_seconds: float
    checkpoint: str | None
    environment: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "model_config": dict(getattr(self.model, "onebit_config", {})),
            "epochs": self.history,
            "test_accuracy": self.test_accuracy,
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "checkpoint": self.checkpoint,
            "environment": self.environment,
        }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def resolve_device(name: str, ctx: ddp.DistContext) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise TrainConfigError(f"device {name!r} requested but no CUDA device is available "
                                   f"(torch {torch.__version__}, {build}); use --device cpu or auto")
        if name == "cuda":
            return torch.device("cuda", ctx.local_rank if ctx.enabled else torch.cuda.current_device())
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise TrainConfigError(f"device {name!r} requested but only {torch.cuda.device_count()} "
                                   f"CUDA device(s) are present")
    return torch.device(name)


def build_model(config: TrainConfig, num_classes: int, input_size: int) -> torch.nn.Module:
    import onebit.models

    kw: dict[str, Any] = {"width": config.width, "num_classes": num_classes, "input_size": input_size,
                          "clip_block": config.clip_block, "float_twin": config.float_twin}
    if config.stem is not None:
        kw["stem"] = config.stem
    if config.input_bits is not None:
        kw["input_bits"] = config.input_bits
    try:
        model = onebit.models.create(config.model, **kw)
    except KeyError as e:  # onebit.models.UnknownModelError lists the known names
        raise TrainConfigError(str(e)) from e
    except ValueError as e:  # an input_bits the model cannot take
        raise TrainConfigError(str(e)) from e
    if config.input_bits is not None:  # the planes of the pixels this dataset's normalization gives
        import onebit.data

        ds = onebit.data.info(config.dataset, config.size)
        model.planes.set_normalization(ds.mean, ds.std)
    return model


def make_train_loader(config: TrainConfig, ctx: ddp.DistContext):
    """The training loader; under DDP each rank draws its slice of one shared permutation
    (``DistributedSampler`` convention, done by ``onebit.data``). Call ``set_epoch`` per epoch:
    shuffle and augmentation are seeded by (seed, epoch), which makes resume exact."""
    import onebit.data

    return onebit.data.make_loader(
        config.dataset, "train", config.batch_size, train=True, augment=None if config.augment else False,
        size=config.size, seed=config.seed, limit=config.limit_train, root=config.data_root,
        rank=ctx.rank, world_size=ctx.world_size)


def make_test_loader(config: TrainConfig):
    import onebit.data

    return onebit.data.make_loader(config.dataset, "test", max(config.batch_size, 256), train=False,
                                   augment=False, size=config.size, seed=0, limit=config.limit_test,
                                   root=config.data_root)


def make_loaders(config: TrainConfig, ctx: ddp.DistContext, device: torch.device, resident: bool):
    """(train loader, test loader or None on ranks > 0); ``resident``: both held on ``device``
    (:class:`onebit.train.resident.ResidentLoader`), same batches as the host loaders."""
    train_loader = make_train_loader(config, ctx)
    test_loader = make_test_loader(config) if ctx.is_main else None
    if resident:
        from onebit.train.resident import ResidentLoader, policy_name

        train_loader = ResidentLoader(train_loader, device, policy_name(train_loader.info.name, config.augment))
        if test_loader is not None:
            test_loader = ResidentLoader(test_loader, device)
    return train_loader, test_loader


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, device: torch.device, prepare=None) -> dict[str, float]:
    """Top-1 accuracy (fraction in [0, 1]) and mean cross-entropy over a whole loader
    (sums stay on the device until the end; ``prepare`` maps each input batch, e.g. to
    channels_last)."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    total = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if prepare is not None:
            x = prepare(x)
        logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
        total += int(y.shape[0])
    model.train(was_training)
    if total == 0:
        raise TrainConfigError("the test loader is empty (check --limit-test)")
    return {"accuracy": int(correct) / total, "loss": float(loss_sum) / total, "samples": total}


def _clip(model: torch.nn.Module) -> None:
    import onebit.nn

    onebit.nn.clip_latent_weights(ddp.unwrap(model))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _environment(device: torch.device, ctx: ddp.DistContext, accel=None) -> dict[str, Any]:
    env = {"torch": torch.__version__, "onebit": onebit.__version__, "device": str(device),
           "torch_threads": torch.get_num_threads(), "world_size": ctx.world_size,
           "machine": platform.machine(), "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
           "python": platform.python_version()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    if accel is not None:
        env["accel"] = accel.to_json()
    return env


def train(config: TrainConfig | dict) -> TrainResult:
    """Train ``config.model`` on ``config.dataset``; see :class:`TrainConfig` for the recipe."""
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    config.validate()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    import onebit.data

    try:
        info = onebit.data.info(config.dataset, config.size)
    except (KeyError, TypeError, ValueError) as e:  # unknown name, or a size it cannot take
        raise TrainConfigError(str(e)) from e
    want_cuda = config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())
    ctx = ddp.setup(want_cuda)
    try:
        return _train(config, info, ctx)
    finally:
        ddp.teardown(ctx)


def _train(config: TrainConfig, info, ctx: ddp.DistContext) -> TrainResult:
    wall0 = time.perf_counter()
    device = resolve_device(config.device, ctx)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    seed_everything(config.seed)
    init = None
    prune_info = None  # the shrink/mask plan of a pruned network, carried into every checkpoint
    if config.init:
        model, init = load_init(config)
        model = model.to(device)
        prune_info = init.get("prune_info")
    else:
        prune_info = read_checkpoint(config.resume).get("prune_info") if config.resume else None
        if prune_info:  # resuming the fine-tune of a pruned network: rebuild its architecture
            from onebit.prune.checkpoint import rebuild

            model = rebuild(read_checkpoint(config.resume)["model_config"], prune_info).to(device)
        else:
            model = build_model(config, info.num_classes, info.image_size).to(device)
    accel = accel_mod.resolve(config, device, model)
    accel_mod.apply_backend(accel)
    accel_mod.apply_model(accel, model)
    optimizer = make_optimizer(model, config.lr, config.weight_decay)

    train_loader, test_loader = make_loaders(config, ctx, device, accel.resident)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise TrainConfigError(
            f"no training batches: {config.dataset} train split with limit_train={config.limit_train} "
            f"and batch_size={config.batch_size} (x {ctx.world_size} ranks) gives an empty epoch")
    budget = None
    if config.budget_s is not None:
        config, budget = _fit_to_budget(config, model, train_loader, test_loader, accel, device, ctx,
                                        steps_per_epoch, wall0)
    total_steps = steps_per_epoch * config.epochs
    scheduler = make_scheduler(optimizer, total_steps, config.warmup)

    start_epoch, history, train_seconds = 0, [], 0.0
    resumed_from = None
    if config.resume:
        ckpt = read_checkpoint(config.resume, map_location=device)
        mine = dict(getattr(model, "onebit_config", {}))
        if ckpt["model_config"] != mine:
            raise CheckpointError(f"--resume {config.resume}: its model {ckpt['model_config']} differs "
                                  f"from the one this run builds {mine}")
        if ckpt["dataset"] != config.dataset:
            raise CheckpointError(f"--resume {config.resume}: trained on {ckpt['dataset']!r}, "
                                  f"this run uses {config.dataset!r}")
        start_epoch = int(ckpt["epoch"])
        if start_epoch >= config.epochs:
            raise TrainConfigError(f"--resume {config.resume} already holds {start_epoch} epochs; "
                                   f"--epochs {config.epochs} leaves nothing to train")
        if prune_info:
            from onebit.prune.layers import ensure_mask_buffers

            ensure_mask_buffers(model, ckpt["state_dict"])
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        # A changed --epochs stretches the cosine to the new total (exact resume needs the same).
        scheduler.lr_lambdas[0].total_steps = total_steps
        history = list(ckpt["metrics"].get("history", []))
        train_seconds = float(ckpt["metrics"].get("train_seconds", 0.0))
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        resumed_from = str(config.resume)

    net = accel_mod.maybe_compile(accel, ddp.wrap(model, ctx, device))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    show = config.progress and ctx.is_main
    from tqdm.auto import tqdm

    # stop_after ends the run early with the full schedule intact (resume later with --resume).
    end_epoch = config.epochs if config.stop_after is None else min(config.epochs, config.stop_after)
    for epoch in range(start_epoch, end_epoch):
        loader = train_loader
        loader.set_epoch(epoch)
        net.train()
        # running sums stay on the device: the host reads them only for the progress bar
        loss_t = torch.zeros((), dtype=torch.float64, device=device)
        correct_t = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        t0 = time.perf_counter()
        bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not show, leave=True, dynamic_ncols=True, mininterval=1.0)
        for step, (x, y) in enumerate(bar):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            x = accel.prepare(x)
            with accel.autocast():
                logits = net(x)
                loss = criterion(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            _clip(model)  # keep latent weights in [-1, 1] (BinaryConnect clipping)
            n = int(y.shape[0])
            loss_t += loss.detach().double() * n
            correct_t += (logits.detach().argmax(1) == y).sum()
            seen += n
            if show and (step % 10 == 0 or step == len(loader) - 1):
                dt = time.perf_counter() - t0
                bar.set_postfix(loss=f"{float(loss_t) / seen:.4f}", acc=f"{int(correct_t) / seen:.4f}",
                                img_s=f"{seen / max(dt, 1e-9):.0f}", refresh=False)
        loss_sum, correct = float(loss_t), int(correct_t)  # one sync per epoch
        bar.close()
        epoch_train = time.perf_counter() - t0
        loss_sum, correct, seen = ddp.all_reduce_sum([loss_sum, correct, seen], ctx, device)
        train_seconds += epoch_train
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "lr": optimizer.param_groups[0]["lr"],
            "train_seconds": epoch_train,
            "images_per_second": seen / max(epoch_train, 1e-9),
        }
        if ctx.is_main:
            ev = evaluate(model, test_loader, device, accel.prepare)
            record.update(test_loss=ev["loss"], test_accuracy=ev["accuracy"])
            history.append(record)
            if show:
                tqdm.write(f"epoch {epoch + 1}/{config.epochs}: train loss {record['train_loss']:.4f} "
                           f"acc {record['train_accuracy']:.4f} | test loss {ev['loss']:.4f} "
                           f"acc {ev['accuracy']:.4f} | {record['images_per_second']:.0f} img/s")
            if config.out:
                ck = _checkpoint(model, config, optimizer, scheduler, epoch + 1, history, train_seconds,
                                 resumed_from)
                if prune_info:
                    ck["prune_info"] = prune_info  # the shrink plan rebuilds the architecture
                save_checkpoint(config.out, ck)
        ddp.barrier(ctx)

    model.eval()
    final = history[-1]["test_accuracy"] if history else float("nan")
    result = TrainResult(config=config, model=model, history=history, test_accuracy=final,
                         train_seconds=train_seconds, wall_seconds=time.perf_counter() - wall0,
                         checkpoint=str(config.out) if config.out else None,
                         environment=_environment(device, ctx, accel))
    if resumed_from:
        result.environment["resumed_from"] = resumed_from
    if budget is not None:
        result.environment["budget"] = budget
    if init is not None:
        result.environment["init"] = {"checkpoint": str(config.init),
                                      "prune_info": _plain(init.get("prune_info"))}
    if config.json_path and ctx.is_main:
        write_json(config.json_path, result.to_json())
    return result


def load_init(config: TrainConfig):
    """``(model, ckpt)`` from ``config.init`` (plain or pruned checkpoint), checked against the run."""
    from onebit.prune.checkpoint import load_checkpoint as load_any

    try:
        model, ckpt = load_any(config.init)
    except FileNotFoundError as e:
        raise CheckpointError(f"--init {config.init}: {e}") from e
    name = ckpt["model_config"].get("name")
    if name != config.model:
        raise CheckpointError(f"--init {config.init} holds model {name!r}, this run trains {config.model!r}")
    if ckpt["dataset"] != config.dataset:
        raise CheckpointError(f"--init {config.init}: trained on {ckpt['dataset']!r}, "
                              f"this run uses {config.dataset!r}")
    model.train()
    return model, ckpt


def _plain(x):
    return json.loads(json.dumps(x, default=str)) if x is not None else None


def _fit_to_budget(config, model, train_loader, test_loader, accel, device, ctx, steps_per_epoch, wall0):
    from onebit.train.budget import fit_epochs, measure_step_seconds

    criterion = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    step_s = measure_step_seconds(model, lambda m: make_optimizer(m, config.lr, config.weight_decay),
                                  train_loader, criterion, accel, device, max_seconds=0.05 * config.budget_s)
    if ctx.enabled and ctx.world_size > 1:  # every rank must train the same number of epochs
        step_s = ddp.all_reduce_sum([step_s], ctx, device)[0] / ctx.world_size
    spent = time.perf_counter() - wall0
    test_images = test_loader.num_samples if test_loader is not None else 0
    epochs = fit_epochs(config.budget_s - spent, steps_per_epoch, step_s, test_images, config.batch_size,
                        config.epochs)
    budget = {"budget_s": config.budget_s, "spent_before_training_s": spent, "step_seconds": step_s,
              "max_epochs": config.epochs, "epochs": epochs}
    return config.replace(epochs=epochs), budget


def _checkpoint(model, config, optimizer, scheduler, epoch, history, train_seconds, resumed_from):
    return {
        "model_config": dict(model.onebit_config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "dataset": config.dataset,
        "train_config": config.to_dict(),
        "metrics": {"history": history, "test_accuracy": history[-1].get("test_accuracy"),
                    "train_seconds": train_seconds, "resumed_from": resumed_from},
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "onebit_version": onebit.__version__,
        "rng": rng_state(),
    }


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
