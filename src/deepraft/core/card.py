"""Model cards: a folder holding the weights and everything needed to use them.

    NAME/card.json           name, model config, calibrated thresholds, training record, metrics
    NAME/model.safetensors   weights (the model config is in the metadata as well)

``deepraft.load(name_or_path)`` accepts a bundled name (``default``), a card folder, or a
training run folder (its latest checkpoint, uncalibrated: threshold 0 on the logit).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepraft.core.config import ModelConfig, from_dict, to_dict
from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.weights_io import WEIGHTS_NAME, latest_checkpoint, read_model_config

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
CARD_FILE = "card.json"
WEIGHTS_FILE = WEIGHTS_NAME


@dataclass
class ModelCard:
    name: str
    model: ModelConfig
    thresholds: dict[str, float] = field(default_factory=dict)
    """Scanner-logit thresholds keyed by the false-positive rate they were calibrated for
    (e.g. "0.001"); an image is judged protected when its score is above the threshold."""
    default_fpr: float = 1e-3
    calibration: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None
    path: Path | None = None
    weights_file: str = WEIGHTS_FILE

    def threshold(self, fpr: float | None = None) -> float:
        """The calibrated threshold for ``fpr`` (default: the card's default FPR)."""
        fpr = self.default_fpr if fpr is None else float(fpr)
        if not self.thresholds:
            return 0.0
        for key, value in self.thresholds.items():
            if abs(float(key) - fpr) <= 1e-12 * max(1.0, fpr):
                return float(value)
        known = ", ".join(sorted(self.thresholds, key=float))
        raise ValueError(f"model {self.name!r} has no threshold calibrated for FPR {fpr:g}; calibrated: {known}")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": to_dict(self.model),
            "thresholds": self.thresholds,
            "default_fpr": self.default_fpr,
            "calibration": self.calibration,
            "training": self.training,
            "metrics": self.metrics,
            "weights_sha256": self.weights_sha256,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path | None = None) -> ModelCard:
        return cls(
            name=data["name"],
            model=from_dict(ModelConfig, data["model"], "card.model"),
            thresholds={str(k): float(v) for k, v in data.get("thresholds", {}).items()},
            default_fpr=float(data.get("default_fpr", 1e-3)),
            calibration=data.get("calibration", {}),
            training=data.get("training", {}),
            metrics=data.get("metrics", {}),
            weights_sha256=data.get("weights_sha256"),
            path=path,
        )

    @property
    def weights_path(self) -> Path:
        if self.path is None:
            raise ValueError(f"model card {self.name!r} has no folder")
        return self.path / self.weights_file


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundled_models() -> list[str]:
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(d.name for d in WEIGHTS_DIR.iterdir() if (d / CARD_FILE).is_file())


def is_bundled_name(model: str | Path) -> bool:
    """A plain string naming a bundled model (``"default"``). A path object, or a string with a
    folder separator (``"./default"``), is always a path."""
    return (
        isinstance(model, str)
        and "/" not in model
        and os.sep not in model
        and (WEIGHTS_DIR / model / CARD_FILE).is_file()
    )


def resolve_card(model: str | Path) -> ModelCard:
    """Find the card for a bundled name, a card folder or a run folder. A bundled name always
    means the bundled model, even where the working folder holds a folder of that name: write
    ``./default`` for the folder."""
    path = Path(model)
    if is_bundled_name(model):
        path = WEIGHTS_DIR / str(model)  # a bundled name wins over a local folder of that name
    if (path / CARD_FILE).is_file():
        card = ModelCard.from_json(json.loads((path / CARD_FILE).read_text()), path=path)
        if card.weights_sha256 and sha256_file(card.weights_path) != card.weights_sha256:
            raise ValueError(f"{card.weights_path}: weights do not match the card's sha256")
        return card
    if path.is_file() and path.suffix == ".safetensors":
        return ModelCard(name=path.stem, model=read_model_config(path), path=path.parent, weights_file=path.name)
    ckpt = latest_checkpoint(path) if path.is_dir() else None
    if ckpt is not None:
        return ModelCard(
            name=path.name, model=read_model_config(ckpt / WEIGHTS_FILE), path=ckpt, training={"checkpoint": str(ckpt)}
        )
    names = ", ".join(bundled_models()) or "none"
    raise FileNotFoundError(f"{model}: not a bundled model ({names}), a model card folder or a training run")


def write_card(card: ModelCard, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / CARD_FILE, (json.dumps(card.to_json(), indent=2) + "\n").encode())
