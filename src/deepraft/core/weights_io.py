"""Weights files and the run-folder layout: what loading a model needs, without the training code.

RUN/checkpoints/step_0000500/model.safetensors   weights (+ model config and step in metadata)
RUN/checkpoints/step_0000500/train_state.pt      optimizer, step, RNG, wall time


"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
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


def widen_state(narrow: Mapping[str, torch.Tensor], fresh: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights for a model whose layers have as many or more channels than those of ``narrow``,
    computing exactly what ``narrow`` computed (function-preserving widening, as Net2WiderNet in
    Chen et al., "Net2Net", 2016, but with zeros where Net2Net splits weights).

    ``fresh`` is the wider model's own freshly initialised state. Each tensor of ``narrow`` fills
    the leading slice of its wider copy; in a weight (2 or more dimensions) the old output
    channels read nothing from the new input channels (zeros), and the new output channels keep
    their fresh weights. So every new channel starts as an unused feature that gradient descent
    can put to work, and per-channel layers (batch norm, biases) keep their fresh values there.
    Holds for layers whose channels grow at the end (convolutions, linear layers, batch norm)."""
    missing, unused = sorted(set(fresh) - set(narrow)), sorted(set(narrow) - set(fresh))
    if missing or unused:
        raise ValueError(f"widening needs the same layers: missing {missing[:3]}, unused {unused[:3]}")
    out: dict[str, torch.Tensor] = {}
    for name, target in fresh.items():
        src = narrow[name]
        if src.dim() != target.dim() or any(a > b for a, b in zip(src.shape, target.shape)):
            raise ValueError(f"{name}: {tuple(src.shape)} does not fit into {tuple(target.shape)}")
        wide = target.detach().clone()
        if wide.dim() >= 2:
            wide[: src.shape[0]] = 0
        wide[tuple(slice(0, n) for n in src.shape)] = src.to(wide.dtype)
        out[name] = wide
    return out
