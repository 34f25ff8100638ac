"""Training of onebit models (PyTorch): ``train(config)``, checkpoints, DDP glue.

``onebit.train.train(TrainConfig(model="mnist-small", dataset="mnist", epochs=5))`` trains with
the default recipe (Adam, warmup + cosine, no decay on latent binary weights, latent clipping);
``load_checkpoint(path) -> (model, ckpt)`` rebuilds a trained model.
"""
from onebit.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from onebit.train.config import TrainConfig, TrainConfigError
from onebit.train.loop import TrainResult, evaluate, train

__all__ = ["CheckpointError", "TrainConfig", "TrainConfigError", "TrainResult", "evaluate",
           "load_checkpoint", "read_checkpoint", "save_checkpoint", "train"]
