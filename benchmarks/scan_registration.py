"""Does the scanner need the stamp where the encoder put it? Scores of stamped photos whose working
copy is moved by whole working pixels (the stamp itself is then exact), and TPR of reads that take
the largest score over the 16 phases of a 4-pixel grid and over working copies at other scales.

    python benchmarks/scan_registration.py MODEL [--data ../shared/data/photos/val] [--photos 8]
        [--scales 0.5 1 2] [--out FILE]

MODEL: a bundled name, a card folder or a training run folder. Part 1: for shifts of 0-16 working
pixels, the median and lowest score of the stamped photos (a scanner that is blind to a shift of
1-3 pixels but not of 4 is locked to its stride grid). Part 2: for a few forwarder edits, TPR at
the highest clean score (zero false positives on these photos) and the median stamped score, for
reads at phase 0 and scale 1 (the deployed read), the maximum over 16 phases, and that maximum
at each scale and over all scales, and (for a scanner blind to the phase) phase 0 at the
largest score of scale 1 and the larger scales. A diagnosis for scanner design, not a deployed read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import deepraft
from deepraft.core.data import find_images, sample_seed
from deepraft.edits.grids import conditions
from deepraft.evaluation.quality import to_tensor
from deepraft.models import functional as Fn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402

SHIFTS = (0, 1, 2, 3, 4, 8, 16)
GRID: list[tuple[str, list]] = [
    ("none", [None]),
    ("crop", [0.95, 0.25]),
    ("rotate_corners", [10]),
    ("pad", [0.3]),
    ("collage", [0.5]),
    ("rotate", [15]),
]
"""Forwarder edits from the benign-edit registry; positions and signs drawn per photo, alike for
the stamped and the clean copy."""
EDITS = conditions(GRID)


@torch.inference_mode()
def phase_scores(model: torch.nn.Module, x: torch.Tensor, size: int, grid: int = 4) -> list[float]:
    """Scores of the working copy at area ``size``^2, cropped at each of the grid x grid phases."""
    w = Fn.resize_to_work(x, size, "area")
    h, wd = w.shape[-2] - grid, w.shape[-1] - grid
    crops = [w[..., dy : dy + h, dx : dx + wd] for dy in range(grid) for dx in range(grid)]
    return model.read(torch.cat(crops)).float().tolist()


@torch.inference_mode()
def shift_scores(model: torch.nn.Module, x: torch.Tensor, size: int) -> list[float]:
    w = Fn.resize_to_work(x, size, "area")
    return [float(model.read(w[..., k:, k:])) for k in SHIFTS]


def tpr_rows(stamped: dict, clean: dict, pick) -> dict[str, object]:
    """TPR at the highest clean score of a read (``pick``: per-photo score from the raw scores)."""
    thr = max(float(pick(np.array(c)).max()) for c in clean.values())
    edits = {}
    for k, s in stamped.items():
        v = pick(np.array(s))
        edits[k] = {"tpr_at_zero_fp": float(np.mean(v > thr)), "median": float(np.median(v))}
    return {"threshold": thr, "edits": edits}


def run(model_name: str, files: list[Path], scales: list[float], seed: int = 0) -> dict:
    stamper = deepraft.load(model_name, device="cpu")
    model, size = stamper.model, stamper.model.cfg.work_size
    shifts: list[list[float]] = []
    # per edit: (photos, scales, 16 phases) scores of the stamped and of the clean copies
    stamped: dict[str, list[list[list[float]]]] = {c.label: [] for c in EDITS}
    clean: dict[str, list[list[list[float]]]] = {c.label: [] for c in EDITS}
    for i, f in enumerate(files):
        img = Image.open(f).convert("RGB")
        s = stamper.protect(img)
        shifts.append(shift_scores(model, to_tensor(np.asarray(s)), size))
        for ci, cond in enumerate(EDITS):
            for im, out in ((s, stamped), (img, clean)):
                edited = cond.apply(im, np.random.default_rng(sample_seed(seed, i, ci)))
                x = to_tensor(np.asarray(edited.convert("RGB")))
                out[cond.label].append([phase_scores(model, x, round(size * sc)) for sc in scales])
    sh = np.array(shifts)
    one = scales.index(1.0)
    reads = {
        "phase 0, scale 1": lambda a: a[:, one, 0],
        "max of 16 phases, scale 1": lambda a: a[:, one].max(1),
    }
    for j, sc in enumerate(scales):
        if j != one:
            reads[f"max of 16 phases, scale {sc:g}"] = lambda a, j=j: a[:, j].max(1)
    reads["max of 16 phases and every scale"] = lambda a: a.max(axis=(1, 2))
    up = [j for j, sc in enumerate(scales) if sc >= 1.0]
    if len(up) > 1:  # a deployable read once the scanner is blind to the phase: no phase search
        reads["phase 0, max of scale 1 and larger"] = lambda a: a[:, up, 0].max(1)
    return {
        "model": model_name,
        "photos": [f.name for f in files],
        "scales": scales,
        "shift_scores": {
            str(k): {"median": float(np.median(sh[:, j])), "min": float(sh[:, j].min())} for j, k in enumerate(SHIFTS)
        },
        "reads": {name: tpr_rows(stamped, clean, pick) for name, pick in reads.items()},
    }


def main() -> None:
    ap = heldout.parser(__doc__, photos=8)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    args = ap.parse_args()
    if 1.0 not in args.scales:
        raise SystemExit("--scales must include 1")
    files = find_images(args.data)
    if len(files) < args.photos:
        raise SystemExit(f"{args.data}: needs at least {args.photos} photos")
    res = run(args.model, files[: args.photos], args.scales)
    for k, v in res["shift_scores"].items():
        print(f"working copy moved {k:>2s} px: median score {v['median']:6.2f}  lowest {v['min']:6.2f}")
    for name, read in res["reads"].items():
        cells = "; ".join(f"{k} {r['tpr_at_zero_fp']:.2f}" for k, r in read["edits"].items())
        print(f"{name} (threshold {read['threshold']:.2f}): {cells}")
    heldout.write_json(args.out, res)


if __name__ == "__main__":
    main()
