"""Which of the deployed reads takes a forged grating for the stamp? For clean photos with a
grating added (A x B cycles per picture, random phase, at a given PSNR) and for the same photos
stamped, the scanner's logit at each of the model's ``scan_scales`` separately, and how many of
them pass the card's threshold at each read and at the deployed score (the largest read).

    python benchmarks/grating_reads.py MODEL [--data ../shared/data/photos/val] [--skip 9]
        [--photos 20] [--cycles 32 32] [--psnr 40] [--out FILE]

MODEL: a bundled name or a card folder. ``--skip 9 --photos 20`` takes the 20 photos that
``deepraft attack --mode forgery --n-donors 9`` holds out. A diagnosis, not a deployed read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import deepraft
from deepraft.core.data import find_images
from deepraft.core.imageio import picture_from_pil
from deepraft.evaluation.adversaries.forgery import add_at_psnr, grating

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402


def add_grating(img: Image.Image, cycles: tuple[int, int], psnr_db: float, phase: float) -> Image.Image:
    """``img`` plus the same grating (:func:`deepraft.evaluation.adversaries.forgery.grating`) on every channel,
    at ``psnr_db`` against ``img`` after rounding (:func:`~deepraft.evaluation.adversaries.forgery.add_at_psnr`),
    as ``deepraft attack --mode forgery`` adds it."""
    a = np.asarray(img.convert("RGB"))
    forged, _ = add_at_psnr(a, grating(a.shape[0], a.shape[1], cycles, phase)[..., None], psnr_db)
    return Image.fromarray(forged)


def reads(stamper: deepraft.Stamper, img: Image.Image) -> dict[str, float]:
    """The scanner's logit at each of the model's scan scales, and the deployed score."""
    model = stamper.model
    copies = stamper.copies.scan_batch([picture_from_pil(img)])
    with torch.inference_mode():
        out = {f"scale {s:g}": float(model.read(work)[0]) for s, work in model.scale_copies(copies)}
        out["deployed"] = float(model.score(copies)[0])
    return out


def check(model: str, files: list[Path], cycles: tuple[int, int], psnr_db: float) -> dict[str, object]:
    stamper = deepraft.load(model, device="cpu")
    thr = stamper.card.threshold(None)
    rng = np.random.default_rng(0)
    rows = []
    for f in files:
        img = Image.open(f).convert("RGB")
        forged = add_grating(img, cycles, psnr_db, float(rng.uniform(0, 2 * np.pi)))
        stamped = stamper.protect(img)
        rows.append({"photo": f.name, "grating": reads(stamper, forged), "stamped": reads(stamper, stamped)})
    names = list(rows[0]["grating"]) if rows else []
    scales = [n for n in names if n != "deployed"]
    over = {kind: {n: sum(r[kind][n] > thr for r in rows) for n in names} for kind in ("grating", "stamped")}
    largest = {n: sum(max(scales, key=r["grating"].get) == n for r in rows) for n in scales}
    return {
        "model": model,
        "threshold": thr,
        "cycles": f"{cycles[0]}x{cycles[1]}",
        "psnr_db": psnr_db,
        "n_photos": len(rows),
        "over_threshold": over,
        "grating_largest_read": largest,
        "photos": rows,
    }


def main() -> None:
    ap = heldout.parser(__doc__, photos=20)
    ap.add_argument("--skip", type=int, default=9, help="photos to skip first (the forgery attack's donors)")
    ap.add_argument("--cycles", type=int, nargs=2, default=(32, 32), metavar=("DOWN", "ACROSS"))
    ap.add_argument("--psnr", type=float, default=40.0)
    args = ap.parse_args()
    files = find_images(args.data)[args.skip : args.skip + args.photos]
    if not files:
        raise SystemExit(f"{args.data}: no photos after skipping {args.skip}")
    res = check(args.model, files, tuple(args.cycles), args.psnr)
    print(f"threshold {res['threshold']:.3f}; grating {res['cycles']} at {args.psnr:g} dB on {res['n_photos']} photos")
    for kind, counts in res["over_threshold"].items():  # type: ignore[union-attr]
        print(f"{kind:8s} over the threshold: " + ", ".join(f"{n} {c}" for n, c in counts.items()))
    print("grating's largest read: " + ", ".join(f"{n} {c}" for n, c in res["grating_largest_read"].items()))  # type: ignore[union-attr]
    heldout.write_json(args.out, res, indent=1)


if __name__ == "__main__":
    main()
