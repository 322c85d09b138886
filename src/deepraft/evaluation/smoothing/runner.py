"""``deepraft certify``: certified accuracy of a smoothed scanner on stamped and clean photos."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.imageio import read_images
from deepraft.evaluation.smoothing.core import Smooth, certified_accuracy

if TYPE_CHECKING:
    from deepraft.runtime.stamper import Stamper


@dataclass
class CertifySettings:
    sigma: float | None = None
    """Smoothing sigma (default: the model's training sigma, else 0.25)."""
    n0: int = 100
    n: int = 10_000
    alpha: float = 0.001
    batch_size: int = 500
    max_photos: int | None = None
    base_threshold: float | None = None
    """Threshold of the base classifier on the logit (default: the card's calibrated one)."""
    seed: int = 0

    @classmethod
    def quick(cls) -> CertifySettings:
        return cls(n0=50, n=500, max_photos=6)


RADII = np.round(np.arange(0.0, 2.01, 0.05), 3)


def run_certify(
    stamper: Stamper,
    files: Sequence[Path],
    out_dir: Path,
    settings: CertifySettings,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sigma = settings.sigma or stamper.card.model.smoothing_std or 0.25
    thr = stamper.card.threshold() if settings.base_threshold is None else settings.base_threshold
    smooth = Smooth(partial(stamper.model.score, smoothed=False), sigma, thr)
    files = list(files)[: settings.max_photos] if settings.max_photos else list(files)
    failed: list[str] = []
    rows, certs, labels = [], [], []
    g = torch.Generator(device=stamper.device).manual_seed(settings.seed)
    for f, pic in read_images(files, failed, stamper.max_pixels, progress):
        stamped = stamper.protect(pic)
        work = stamper.copies.scan_batch([stamped, pic])
        for label, x in ((1, work[0]), (0, work[1])):
            with torch.inference_mode():
                c = smooth.certify(x, settings.n0, settings.n, settings.alpha, settings.batch_size, g)
            certs.append(c)
            labels.append(label)
            rows.append(
                {
                    "photo": f.name,
                    "label": label,
                    "prediction": c.prediction,
                    "radius": c.radius,
                    "p_lower": c.p_lower,
                    "counts": list(c.counts),
                    "correct": c.prediction == label,
                }
            )
    if not rows:
        raise ValueError("certify: no readable photos")
    stamped_idx = [i for i, y in enumerate(labels) if y == 1]
    clean_idx = [i for i, y in enumerate(labels) if y == 0]
    curve = {
        "radius": RADII.tolist(),
        "stamped": certified_accuracy([certs[i] for i in stamped_idx], [1] * len(stamped_idx), RADII).tolist(),
        "clean": certified_accuracy([certs[i] for i in clean_idx], [0] * len(clean_idx), RADII).tolist(),
    }
    summary = {
        "model": stamper.card.name,
        "sigma": sigma,
        "base_threshold": thr,
        "settings": asdict(settings),
        "n_photos": len(stamped_idx),
        "abstain_rate": float(np.mean([c.abstained for c in certs])),
        "curve": curve,
        "samples": rows,
        "failed": failed,
        "space": f"L2 radius in the deployed score's input: the scan copy (a working copy at {stamper.scan_size}^2 "
        "pixels), values in [0, 1]",
    }
    atomic_write_bytes(out_dir / "certify.json", (json.dumps(summary, indent=2) + "\n").encode())
    plot_certified(out_dir, summary)
    return summary


def plot_certified(out_dir: Path, summary: dict) -> Path:
    from deepraft.evaluation.plotting import line_plot

    c = summary["curve"]
    curves = {"stamped": (c["radius"], c["stamped"]), "clean": (c["radius"], c["clean"])}
    return line_plot(
        Path(out_dir) / "certified_accuracy.png",
        curves,
        "L2 radius (scan copy, [0,1] scale)",
        "certified accuracy",
        f"certified accuracy, sigma {summary['sigma']:g}, n {summary['settings']['n']}",
        step=True,
    )
