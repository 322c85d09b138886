"""Shared fixtures: small synthetic photos, a tiny trained model card, the shared photos."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_PHOTOS = REPO.parent / "shared" / "data" / "photos"
EXAMPLES = REPO / "examples" / "photos"

TINY_MODEL = {
    "encoder": "unet_tiny",
    "scanner": "convnet_tiny",
    "work_size": 32,
    "psnr_target": 30.0,
}

TINY_AREA_MODEL = {  # the stamp v2 design (configs/default.yaml) at toy size
    "encoder": "unet_fc_tiny",
    "scanner": "mapnet_tiny",
    "scanner_kwargs": {"antialias": True},
    "scan_scales": (1.0, 2.0),
    "work_size": 40,
    "work_mode": "area",
    "psnr_target": 32.0,
    "psnr_mode": "cap",
    "residual_activation": "unit_tanh",
    "residual_highpass": 2.0,
    "mask": "texture",
    "mask_power": 1.0,
    "mask_window": 5,
    "mask_floor": 0.004,
    "mask_gain": 0.5,
    "mask_ceiling": 0.05,
    "crest_factor": 2.5,
    "luma_only": True,
}


def synthetic_photo(seed: int, width: int = 96, height: int = 80) -> Image.Image:
    """A smooth random 'photo': low-frequency colour fields plus a little texture."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float64)
    base += rng.normal(0, 8, size=base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for i in range(8):
        synthetic_photo(i, 96 + 8 * i, 80).save(d / f"p{i}.jpg", quality=92)
    (d / "sub").mkdir()
    synthetic_photo(99, 120, 64).save(d / "sub" / "nested.png")
    return d


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Ask a server process to stop; kill it when it has not within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_cli(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "deepraft.apps.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=check,
        timeout=600,
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, photo_dir) -> Path:
    """A tiny model trained for a few steps by the real loop."""
    from deepraft.core.config import load_train_config
    from deepraft.training.loop import train

    cfg = load_train_config(
        None,
        {
            "model": TINY_MODEL,
            "data": {"image_size": 48, "max_side": 128},
            "batch_size": 4,
            "max_steps": 6,
            "checkpoint_every": 3,
            "log_every": 2,
            "warmup_steps": 1,
            "augment": {"enabled": True, "aug_start": 0, "aug_end": 2},
        },
    )
    run = tmp_path_factory.mktemp("runs") / "tiny"
    train(cfg, photo_dir, run, show_progress=False)
    return run


@pytest.fixture(scope="session")
def tiny_area_card(tmp_path_factory, photo_dir) -> Path:
    """A tiny stamp-v2 model (aspect-keeping working copy, map scanner, every v2 training edit,
    forged negatives, strength warm-up) trained a few steps by the real loop, then exported."""
    from deepraft.core.config import load_train_config
    from deepraft.evaluation.card_export import export_run
    from deepraft.training.loop import train

    cfg = load_train_config(
        None,
        {
            "model": TINY_AREA_MODEL,
            "data": {"image_size": 40, "max_side": 96, "at_work_scale": True},
            "batch_size": 4,
            "max_steps": 4,
            "checkpoint_every": 2,
            "log_every": 2,
            "warmup_steps": 1,
            "strength_warmup_db": 6.0,
            "strength_warmup_steps": 3,
            "augment": {
                "enabled": True,
                "aug_start": 0,
                "aug_end": 1,
                "max_ops": 3,
                "always": ["d4", "jitter"],
                "names": ["affine", "collage", "occlude", "jpeg"],
                "p_swap": 0.3,
                "p_pattern": 0.3,
            },
        },
    )
    run = tmp_path_factory.mktemp("runs") / "tiny-area"
    train(cfg, photo_dir, run, show_progress=False)
    out = tmp_path_factory.mktemp("cards") / "tiny-area"
    export_run(run, "tiny-area", out, calib_data=photo_dir, variants_per_image=3)
    return out


@pytest.fixture(scope="session")
def tiny_card(tmp_path_factory, tiny_run, photo_dir) -> Path:
    from deepraft.evaluation.card_export import export_run

    out = tmp_path_factory.mktemp("cards") / "tiny"
    export_run(tiny_run, "tiny", out, calib_data=photo_dir, variants_per_image=4)
    return out


@pytest.fixture(scope="session")
def tiny_stamper(tiny_card):
    import deepraft

    return deepraft.load(tiny_card, device="cpu")


@pytest.fixture(scope="session")
def default_stamper():
    import deepraft

    return deepraft.load("default", device="cpu")
