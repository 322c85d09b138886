"""Checkpoints: safetensors weights with the resolved config, plus optimizer, step and RNG.

Layout of a run folder::

    RUN/config.yaml                     resolved training config
    RUN/run.json                        data, hardware, torch version, world size
    RUN/log.csv                         one row per logged step
    RUN/checkpoints/step_0000500/model.safetensors   weights (+ config and step in metadata)
    RUN/checkpoints/step_0000500/train_state.pt      optimizer, step, RNG, wall time

The training state is read with ``torch.load(weights_only=True)``: it holds tensors and plain
Python values only (the NumPy RNG state is stored as a tensor); checkpoints written before
that, with a NumPy array inside, are read with exactly the NumPy types that array needs
allowed.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepraft.core.config import ModelConfig
from deepraft.core.fileio import process_umask
from deepraft.core.weights_io import (
    STATE_NAME,
    WEIGHTS_NAME,
    checkpoint_dirs,
    load_weights,
    save_weights,
)

__all__ = [
    "load_checkpoint",
    "read_train_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


def _numpy_state_out() -> tuple[Any, ...]:
    """NumPy's legacy RNG state with its key array as an int64 tensor (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached))


def _numpy_state_in(state: Any) -> tuple[Any, ...]:
    name, keys, pos, has_gauss, cached = state
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    return (name, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached))


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": _numpy_state_out(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(_numpy_state_in(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    model_cfg: ModelConfig,
    optimizer: torch.optim.Optimizer,
    wall_time_s: float,
    keep: int = 2,
) -> Path:
    """Write ``RUN/checkpoints/step_N`` atomically (temporary folder + rename), then prune."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        save_weights(model, tmp / WEIGHTS_NAME, model_cfg, {"step": str(step)})
        torch.save(
            {"step": step, "optimizer": optimizer.state_dict(), "rng": rng_state(), "wall_time_s": wall_time_s},
            tmp / STATE_NAME,
        )
        if final.exists():
            shutil.rmtree(final)
        os.chmod(tmp, 0o777 & ~process_umask())
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in checkpoint_dirs(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _legacy_numpy_globals() -> list[Any]:
    """The NumPy types a pickled RNG key array needs (checkpoints from before the tensor form)."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def read_train_state(ckpt: Path) -> dict[str, Any]:
    """``train_state.pt`` of a checkpoint folder, loaded with ``weights_only=True``."""
    path = Path(ckpt) / STATE_NAME
    with torch.serialization.safe_globals(_legacy_numpy_globals()):
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def load_checkpoint(ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Restore weights (and optimizer and RNG when given); return the training state."""
    load_weights(model, Path(ckpt) / WEIGHTS_NAME)
    state = read_train_state(ckpt)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state
