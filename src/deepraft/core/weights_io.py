"""Weights files and the run-folder layout: what loading a model needs, without the training code.

RUN/checkpoints/step_0000500/model.safetensors   weights (+ model config and step in metadata)
RUN/checkpoints/step_0000500/train_state.pt      optimizer, step, RNG, wall time


"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from deepraft.core.config import ModelConfig, from_dict, to_dict
from deepraft.core.fileio import atomic_write_with

WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "train_state.pt"
MODEL_CONFIG_KEY = "deepraft_model_config"


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run folder (weights and training state), oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir() and d.name.startswith("step_") and (d / WEIGHTS_NAME).is_file() and (d / STATE_NAME).is_file()
    )


def latest_checkpoint(run_dir: Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def save_weights(model: nn.Module, path: Path, model_cfg: ModelConfig, extra: dict[str, str] | None = None) -> None:
    """Save weights atomically as safetensors, with the model config in the metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {MODEL_CONFIG_KEY: json.dumps(to_dict(model_cfg)), **(extra or {})}
    atomic_write_with(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta), suffix="")


def read_model_config(path: Path) -> ModelConfig:
    """The model config stored in the metadata of a weights file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if MODEL_CONFIG_KEY not in meta:
        raise ValueError(f"{path}: no deepraft model config in the safetensors metadata")
    return from_dict(ModelConfig, json.loads(meta[MODEL_CONFIG_KEY]), where=str(path))


def load_weights(model: nn.Module, path: Path) -> None:
    model.load_state_dict(load_file(str(path)))
