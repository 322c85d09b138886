"""The training loop, its losses, checkpoints and distributed set-up."""

from .loop import TrainResult, train, train_step

__all__ = ["TrainResult", "train", "train_step"]
