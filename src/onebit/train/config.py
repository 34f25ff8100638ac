"""Training configuration: one plain dataclass, validated once, stored verbatim in checkpoints."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from onebit.errors import OnebitError


class TrainConfigError(OnebitError, ValueError):
    """A training option is out of range or inconsistent (the message names the option)."""


DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Everything that defines a training run (and nothing that depends on the machine).

    Device options (:mod:`onebit.train.accel`): ``resident`` holds the decoded dataset on the
    training device and augments there (default: on for CUDA), ``bf16`` autocasts the forward
    pass (default: on for CUDA), ``channels_last``, ``compile`` (torch.compile) and
    ``deterministic`` (cuDNN's deterministic algorithms). ``None`` means the device's default.

    ``init``: start from the weights and architecture of a checkpoint (a plain one, or a pruned
    one whose layers were shrunk or masked by ``onebit prune``: fine-tuning), not from a fresh
    model. ``budget_s``: fit the number of epochs (at most ``epochs``) to this many seconds of
    wall clock (:mod:`onebit.train.budget`).

    Recipe (BinaryNet / Bi-Real practice): Adam, learning rate warmed up linearly for
    ``warmup`` (fraction of all steps) then cosine-annealed to 0, no weight decay on the latent
    weights of binary layers (decay would pull them towards 0 where sign() flips most), latent
    weights clipped to [-1, 1] after every step (Courbariaux et al., 2016).
    """

    model: str
    dataset: str
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    out: str | None = None
    width: float = 1.0
    clip_block: bool = False
    float_twin: bool = False
    stem: str | None = None
    input_bits: Any = None
    device: str = "auto"
    seed: int = 0
    json_path: str | None = None
    resume: str | None = None
    limit_train: int | None = None
    limit_test: int | None = None
    size: int | None = None
    threads: int | None = None
    stop_after: int | None = None
    warmup: float = 0.03
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    augment: bool = True
    progress: bool = True
    data_root: str | None = None
    resident: bool | None = None
    bf16: bool | None = None
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = True
    init: str | None = None
    budget_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def positive_int(name: str, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise TrainConfigError(f"{name} must be a positive integer, got {v!r}")

        if not isinstance(self.model, str) or not self.model:
            raise TrainConfigError(f"model must be a model name, got {self.model!r}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise TrainConfigError(f"dataset must be a dataset name, got {self.dataset!r}")
        positive_int("epochs")
        positive_int("batch_size")
        positive_int("limit_train", allow_none=True)
        positive_int("limit_test", allow_none=True)
        positive_int("size", allow_none=True)
        positive_int("threads", allow_none=True)
        positive_int("stop_after", allow_none=True)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise TrainConfigError(f"lr must be > 0, got {self.lr!r}")
        if not (isinstance(self.width, (int, float)) and self.width > 0):
            raise TrainConfigError(f"width must be > 0, got {self.width!r}")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise TrainConfigError(f"device must be one of {DEVICES} (or cuda:N), got {self.device!r}")
        if not (0.0 <= self.warmup < 1.0):
            raise TrainConfigError(f"warmup is a fraction of all steps in [0, 1), got {self.warmup!r}")
        if not (0.0 <= self.label_smoothing < 1.0):
            raise TrainConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.weight_decay < 0:
            raise TrainConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("resident", "bf16"):
            if not (getattr(self, name) is None or isinstance(getattr(self, name), bool)):
                raise TrainConfigError(f"{name} must be true, false or None (device default), got {getattr(self, name)!r}")
        for name in ("channels_last", "compile", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise TrainConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.budget_s is not None:
            if isinstance(self.budget_s, bool) or not isinstance(self.budget_s, (int, float)) or not self.budget_s > 0:
                raise TrainConfigError(f"budget_s must be a number of seconds > 0, got {self.budget_s!r}")
            if self.resume:
                raise TrainConfigError("budget_s cannot be combined with resume (a resumed run keeps the "
                                       "schedule length of its --epochs)")
        if self.init is not None and self.resume:
            raise TrainConfigError("init and resume exclude each other (resume already restores the weights)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise TrainConfigError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TrainConfigError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
