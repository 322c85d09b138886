"""A quick held-out check of a model while it trains: invisibility and the cheapest forwarder
edits, on a few photos that no decision was tuned on.

    python benchmarks/forward_check.py MODEL [--data ../shared/data/photos/val] [--photos 8] [--out FILE]

MODEL: a bundled name, a card folder or a training run folder (its latest checkpoint). Per
photo: PSNR and SSIMULACRA 2 of the stamp; then for each edit of :data:`GRID` (a light crop to
95 %, mirrors, turns, tilts with black corners or cropped, borders, a collage, a crop to 25 %
anywhere, a stretch, a caption bar, JPEG, blur, a quarter-size copy, noise of sigma 0.1,
brightness doubled; registry edits, through the measurement kernel) the scores of the edited
stamped and clean copies. The threshold is the highest clean score over every edit and photo (a run has no
calibrated one): TPR there is what the model separates at zero false positives on these photos.
That threshold is far looser than a card's calibrated one (stamp v2 at stage 2: 0.09 here, 1.76
calibrated at FPR 1e-3), so watch the median scores too. For a decision, use `deepraft eval` on
the test photos with a calibrated card.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

import deepraft
from deepraft.core.data import find_images, sample_seed
from deepraft.core.imageio import read_image
from deepraft.core.measures import psnr
from deepraft.edits.grids import conditions
from deepraft.evaluation.kernel import by_edit, grid_edits, measure
from deepraft.evaluation.quality import ssimulacra2
from deepraft.models.stamp import check_scan_scales

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402

GRID: list[tuple[str, list]] = [
    ("none", [None]),
    ("crop", [0.95]),
    ("jpeg", [50, 30]),
    ("resize", [0.25]),
    ("gaussian_blur", [2]),
    ("hflip", [None]),
    ("vflip", [None]),
    ("rot90", [None]),
    ("rot180", [None]),
    ("rot270", [None]),
    ("rotate_corners", [10, 25]),
    ("rotate", [15]),
    ("pad", [0.1, 0.3]),
    ("collage", [0.5]),
    ("crop", [0.25]),
    ("stretch", [0.2]),
    ("caption", [0.15]),
    ("noise", [0.1]),
    ("brightness", [2.0]),
]
"""The cheapest forwarder edits, from the benign-edit registry (:mod:`deepraft.edits.benign`):
positions, signs and colours drawn per photo, the same draws for the stamped and the clean copy."""


def _draw(seed: int, photo: int, edit: int, variant: int) -> int:
    return sample_seed(seed, photo, edit, variant)


def check(model: str, files: list[Path], scan_scales: list[float] | None = None, seed: int = 0) -> dict[str, object]:
    """``scan_scales`` replaces the model's (the same stamp, read at other scales: a what-if
    for the deployed score, e.g. a half-scale read for crops that enlarge the stamp)."""
    stamper = deepraft.load(model, device="cpu")
    if scan_scales:
        try:
            check_scan_scales(scan_scales, stamper.model.cfg.smoothing_std)
        except ValueError as exc:
            raise SystemExit(f"--scan-scales: {exc}") from exc
        cfg = dataclasses.replace(stamper.model.cfg, scan_scales=tuple(float(x) for x in scan_scales))
        stamper.model.cfg = cfg
    edits = grid_edits(conditions(GRID))
    scores: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label, _ in edits}
    quality = []
    for i, f in enumerate(files):
        pic = read_image(f, max_pixels=None)
        stamped = stamper.protect(pic)
        quality.append(
            {"photo": f.name, "psnr": psnr(pic.rgb, stamped.rgb), "ssimulacra2": ssimulacra2(pic.rgb, stamped.rgb)}
        )
        measured = measure(
            stamper.copies.score_pictures, stamped, pic, edits, seed=lambda e, v, i=i: sample_seed(seed, i, e)
        )
        for label, (s, c) in by_edit(measured).items():
            scores[label][0].extend(s)
            scores[label][1].extend(c)
    threshold = max(max(c) for _, c in scores.values())
    rows = {
        name: {
            "tpr_at_zero_fp": float(np.mean(np.array(s) > threshold)),
            "median_stamped": float(np.median(s)),
            "median_clean": float(np.median(c)),
        }
        for name, (s, c) in scores.items()
    }
    q = {k: [float(r[k]) for r in quality] for k in ("psnr", "ssimulacra2")}
    return {
        "model": model,
        "photos": [f.name for f in files],
        "threshold": threshold,
        "psnr": {"mean": float(np.mean(q["psnr"])), "min": float(np.min(q["psnr"]))},
        "ssimulacra2": {"mean": float(np.mean(q["ssimulacra2"])), "min": float(np.min(q["ssimulacra2"]))},
        "per_photo": quality,
        "edits": rows,
    }


def main() -> None:
    ap = heldout.parser(__doc__, photos=8)
    ap.add_argument("--scan-scales", type=float, nargs="+", default=None, help="read at these scales instead")
    args = ap.parse_args()
    files = find_images(args.data)
    if len(files) < args.photos:
        raise SystemExit(f"{args.data}: needs at least {args.photos} photos")
    res = check(args.model, files[: args.photos], args.scan_scales)
    if args.scan_scales:
        res["scan_scales"] = args.scan_scales
    print(
        f"PSNR mean {res['psnr']['mean']:.2f} min {res['psnr']['min']:.2f}; SSIMULACRA 2 mean "
        f"{res['ssimulacra2']['mean']:.1f} min {res['ssimulacra2']['min']:.1f}; threshold {res['threshold']:.2f}"
    )
    for name, row in res["edits"].items():
        print(
            f"{name:24s} TPR at zero FP {row['tpr_at_zero_fp']:.2f}  median stamped {row['median_stamped']:6.2f}"
            f"  clean {row['median_clean']:6.2f}"
        )
    heldout.write_json(args.out, res)


if __name__ == "__main__":
    main()
