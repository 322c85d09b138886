"""Checkpoints: safetensors weights with the resolved config, plus optimizer, step and RNG.

Layout of a run folder::

    RUN/config.yaml                     resolved training config
    RUN/log.csv                         one row per logged step
    RUN/checkpoints/step_0000500/model.safetensors   weights (+ config and step in metadata)
    RUN/checkpoints/step_0000500/train_state.pt      optimizer, step, RNG, wall time
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import ModelConfig, from_dict, to_dict
from ..imageio import finish_temp_file, process_umask


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("step_")
                  and (d / "model.safetensors").is_file() and (d / "train_state.pt").is_file())


def latest_checkpoint(run_dir: Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_weights(model: nn.Module, path: Path, model_cfg: ModelConfig, extra: dict[str, str] | None = None) -> None:
    """Save weights atomically as safetensors, with the model config in the metadata."""
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"deepraft_model_config": json.dumps(to_dict(model_cfg)), **(extra or {})}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        finish_temp_file(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_model_config(path: Path) -> ModelConfig:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "deepraft_model_config" not in meta:
        raise ValueError(f"{path}: no deepraft model config in the safetensors metadata")
    return from_dict(ModelConfig, json.loads(meta["deepraft_model_config"]), where=str(path))


def load_weights(model: nn.Module, path: Path) -> None:
    model.load_state_dict(load_file(str(path)))


def save_checkpoint(run_dir: Path, step: int, model: nn.Module, model_cfg: ModelConfig,
                    optimizer: torch.optim.Optimizer, wall_time_s: float, keep: int = 2) -> Path:
    """Write ``RUN/checkpoints/step_N`` atomically (temporary folder + rename), then prune."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        save_weights(model, tmp / "model.safetensors", model_cfg, {"step": str(step)})
        torch.save({"step": step, "optimizer": optimizer.state_dict(), "rng": rng_state(),
                    "wall_time_s": wall_time_s}, tmp / "train_state.pt")
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


def load_checkpoint(ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Restore weights (and optimizer and RNG when given); return the training state."""
    load_weights(model, Path(ckpt) / "model.safetensors")
    state = torch.load(Path(ckpt) / "train_state.pt", map_location="cpu", weights_only=False)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state
