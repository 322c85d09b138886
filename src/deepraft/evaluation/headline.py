"""The model-card check: invisibility and detection on full-resolution photos.

Every photo is stamped at its own resolution; we measure the PSNR of the stamped 8-bit image
against the original, then scan the stamped image and its JPEG-50 copy (true positives) and
the original and its JPEG-50 copy (false positives) at the card's calibrated threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepraft.core.imageio import read_images, reencode
from deepraft.core.measures import psnr_uint8
from deepraft.evaluation.kernel import EditFn, by_edit, measure

if TYPE_CHECKING:
    from deepraft.runtime.stamper import Stamper


@dataclass
class HeadlineReport:
    n_images: int
    fpr: float
    threshold: float
    mean_psnr: float
    min_psnr: float
    tpr: dict[str, float]
    fpr_clean: dict[str, float]
    failed: list[str] = field(default_factory=list)
    per_image: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "n_images": self.n_images,
            "fpr": self.fpr,
            "threshold": self.threshold,
            "mean_psnr_db": round(self.mean_psnr, 3),
            "min_psnr_db": round(self.min_psnr, 3),
            "tpr": self.tpr,
            "fpr_clean": self.fpr_clean,
            "failed": self.failed,
        }


def headline_check(
    stamper: Stamper,
    files: Sequence[Path],
    fpr: float | None = None,
    jpeg_quality: int = 50,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> HeadlineReport:
    """Measure PSNR and TPR/FPR (unmodified and JPEG ``jpeg_quality``) on ``files``."""
    thr = stamper.card.threshold(fpr)
    used_fpr = stamper.card.default_fpr if fpr is None else fpr
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    jname = f"jpeg{jpeg_quality}"

    edits: list[tuple[str, EditFn]] = [
        ("none", lambda img, rng: img),
        (jname, lambda img, rng: reencode(img, "JPEG", quality=jpeg_quality)),
    ]
    for f, pic in read_images(files, failed, stamper.max_pixels, progress):
        stamped = stamper.protect(pic)
        s = by_edit(measure(stamper.copies.score_pictures, stamped, pic, edits))
        rows.append(
            {
                "file": str(f),
                "width": pic.size[0],
                "height": pic.size[1],
                "psnr": psnr_uint8(stamped.rgb, pic.rgb),
                "stamped": s["none"][0][0],
                f"stamped_{jname}": s[jname][0][0],
                "clean": s["none"][1][0],
                f"clean_{jname}": s[jname][1][0],
            }
        )
    if not rows:
        raise ValueError("headline check: no readable photos")
    psnrs = np.array([r["psnr"] for r in rows], dtype=np.float64)

    def rate(key: str) -> float:
        return float(np.mean([float(r[key]) > thr for r in rows]))

    return HeadlineReport(
        n_images=len(rows),
        fpr=used_fpr,
        threshold=thr,
        mean_psnr=float(psnrs.mean()),
        min_psnr=float(psnrs.min()),
        tpr={"none": rate("stamped"), jname: rate(f"stamped_{jname}")},
        fpr_clean={"none": rate("clean"), jname: rate(f"clean_{jname}")},
        failed=failed,
        per_image=rows,
    )
