"""Stamp v3 design study, candidate A: does a search over geometry find today's stamp in part
of a picture? The scanner reads each scan copy turned back by several angles (the inscribed
rectangle, no black corners) and at several scales (a crop magnifies the stamp in the working
copy, a paste shrinks it); the score of a *read set* is its largest read. Each read set gets
its own threshold: the empirical FPR-1e-3 point of the clean samples of the held-out photos and
non-photos under the same edits (more reads lift the clean scores too). Positions, the sign of
the angles (and, with black corners, the angle within +-20 %) and paste places are drawn at
random.

    python benchmarks/geometry_search.py MODEL [--data ../shared/data/photos/val] [--photos 29]
        [--nonphoto ../shared/data/nonphoto] [--variants 2] [--out FILE]

MODEL: a bundled name or a card folder. The non-photos are those of the val packages of
``--nonphoto`` (clean only, one variant). A diagnosis for the v3 design, not a deployed read.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import deepraft
from deepraft.core.data import find_images, sample_seed, split_files
from deepraft.core.imageio import picture_from_pil, read_image
from deepraft.edits.benign import Chain
from deepraft.edits.grids import conditions
from deepraft.evaluation.kernel import files_scenery, grid_edits, measure
from deepraft.models import functional as Fn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout

STUDY_GRID: list[tuple[str, list]] = [
    ("none", [None]),
    ("jpeg", [50]),
    ("messenger", [None]),
    ("resize", [0.5]),
    ("crop", [0.5, 0.25, 0.1]),
    ("rotate", [10, 20, 30, 45]),
    ("rotate_corners", [10, 20, 30, 45]),
    ("paste", [0.7, 0.5, 0.35]),
    ("photo_grid", [None]),
    ("chain", [Chain([("crop", 0.36), ("rotate", 7), ("messenger", None)])]),
]
"""The edits of the study: stamp v3's hard cases beside a few easy ones."""

SCALES = (0.35, 0.5, 0.71, 1.0, 2.0)
"""Read scales, relative to the working copy (the deployed reads are 1 and 2)."""

ANGLES = (0, 15, -15, 30, -30, 45, -45)
"""Turns tried back (degrees)."""

READ_SETS: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {
    "deployed (scales 1, 2)": ((1.0, 2.0), (0,)),
    "+ scales 0.35-0.71": (SCALES, (0,)),
    "+ angles to 45": ((1.0, 2.0), ANGLES),
    "scales x angles": (SCALES, ANGLES),
}
"""Candidate read sets: (scales, angles); each is a subset of the reads measured."""


def turned(arr: np.ndarray, degrees: int) -> np.ndarray:
    """``arr`` (h,w,3) turned by ``degrees`` and cut to the largest centred rectangle of its
    aspect ratio inside the turned frame (no black corners)."""
    if degrees == 0:
        return arr
    h, w = arr.shape[:2]
    a = math.radians(abs(degrees))
    f = min(w / (w * math.cos(a) + h * math.sin(a)), h / (w * math.sin(a) + h * math.cos(a)))
    cw, ch = max(16, int(w * f)), max(16, int(h * f))
    img = Image.fromarray(arr).rotate(degrees, resample=Image.Resampling.BICUBIC)
    left, top = (w - cw) // 2, (h - ch) // 2
    return np.asarray(img.crop((left, top, left + cw, top + ch)))


@torch.inference_mode()
def read_grid(stamper, pic) -> np.ndarray:
    """(len(SCALES), len(ANGLES)) logits of one picture's scan copy."""
    model, copies = stamper.model, stamper.copies
    read = copies.read or model.read  # the scan engine (ONNX Runtime on a CPU), else the model
    (scan,) = copies.scan_arrays([pic])
    top = max(model.cfg.scan_scales)
    out = np.zeros((len(SCALES), len(ANGLES)), np.float32)
    for j, a in enumerate(ANGLES):
        t = copies.batch([turned(scan, a)])
        for i, s in enumerate(SCALES):
            out[i, j] = float(read(Fn.rescale(t, s / top))[0])
    return out


def collect(protect, reads, photos: list[Path], nonphotos: list[tuple[Path, str]], variants: int, seed: int):
    """(rows, grids): per sample (source, kind, edit) and ``reads`` of it (an array per picture);
    ``protect`` stamps a picture. The draws depend on ``seed`` alone, so two models measured
    with the same seed see the same crops, angles and pastes."""
    conds = conditions(STUDY_GRID)
    rows: list[tuple[str, str, str]] = []
    grids: list[np.ndarray] = []

    def score(pics):
        return [0.0] * len(pics)

    def keep_all(source: str, kind_of: dict[str, str]):
        def keep(label, variant, kind, img):
            rows.append((source, kind_of.get(kind, kind), label))
            grids.append(reads(picture_from_pil(img.convert("RGB"), source, max_pixels=None)))

        return keep

    for pi, f in enumerate(photos):
        pic = read_image(f)
        edits = grid_edits(conds, files_scenery([o for o in photos if o != f]))
        draws = lambda ci, v, pi=pi: sample_seed(seed, pi, ci, v)
        measure(score, protect(pic), pic, edits, variants, seed=draws, keep=keep_all(f.name, {}))
        print(f"photo {pi + 1}/{len(photos)}", flush=True)
    for ni, (f, kind) in enumerate(nonphotos):
        if ni % 10 == 0:
            print(f"non-photo {ni + 1}/{len(nonphotos)}", flush=True)
        try:
            pic = read_image(f)
        except Exception as exc:  # an unreadable file is skipped, not fatal
            print(f"skip {f.name}: {exc}", flush=True)
            continue
        edits = grid_edits(conds, files_scenery([o for o, _ in nonphotos if o != f]))
        draws = lambda ci, v, ni=ni: sample_seed(seed + 1, ni, ci, v)
        measure(score, None, pic, edits, 1, seed=draws, keep=keep_all(f.name, {"clean": f"clean {kind}"}))
    return rows, np.stack(grids)


def summarise(rows, grids: np.ndarray, fpr: float = 1e-3, photos_only: bool = False) -> dict:
    """Per read set: the threshold at ``fpr`` of the clean samples (of the photos alone with
    ``photos_only``), TPR per edit there, and the clean samples of each kind above it."""
    kinds = np.array([k for _, k, _ in rows])
    labels = np.array([e for _, _, e in rows])
    clean = kinds != "stamped"
    calib = kinds == "clean" if photos_only else clean
    out = {}
    for name, (scales, angles) in READ_SETS.items():
        si = [SCALES.index(s) for s in scales]
        ai = [ANGLES.index(a) for a in angles]
        sc = grids[:, si][:, :, ai].reshape(len(rows), -1).max(axis=1)
        neg = np.sort(sc[calib])
        k = int(math.floor(fpr * neg.size))  # at most k clean samples above the threshold
        thr = float(neg[neg.size - 1 - k])
        tpr, fp = rates_at(sc, kinds, labels, thr)
        out[name] = {"scales": list(scales), "angles": list(angles), "threshold": thr, "tpr": tpr, "clean_above": fp}
    return out


def rates_at(sc: np.ndarray, kinds: np.ndarray, labels: np.ndarray, thr: float) -> tuple[dict, dict]:
    """At threshold ``thr``, per edit label: the TPR of the stamped samples (kind 'stamped'); per
    clean kind: [samples above, samples] of the scores ``sc``."""
    clean = kinds != "stamped"
    tpr = {str(lab): float((sc[(labels == lab) & ~clean] > thr).mean()) for lab in dict.fromkeys(labels[~clean])}
    above = {str(k): [int((sc[kinds == k] > thr).sum()), int((kinds == k).sum())] for k in sorted(set(kinds[clean]))}
    return tpr, above


def study_parser(doc: str | None) -> argparse.ArgumentParser:
    """The design study's command line: :func:`heldout.parser`'s arguments and the non-photos,
    the variants and the seed of the draws."""
    ap = heldout.parser(doc, photos=29)
    ap.add_argument("--nonphoto", type=Path, default=heldout.VAL.parent.parent / "nonphoto")
    ap.add_argument("--max-nonphoto", type=int, default=None, help="at most this many non-photos")
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="the draws (the same seed, the same edits)")
    return ap


def study_pictures(args: argparse.Namespace) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The held-out photos and the (path, kind) of the val-package non-photos ``args`` names."""
    photos = find_images(args.data)[: args.photos]
    nonphotos = split_files(args.nonphoto, "val") if args.nonphoto and args.nonphoto.is_dir() else []
    return photos, nonphotos[: args.max_nonphoto] if args.max_nonphoto is not None else nonphotos


def main() -> None:
    args = study_parser(__doc__).parse_args()
    stamper = deepraft.load(args.model, device="cpu")
    photos, nonphotos = study_pictures(args)
    t0 = time.perf_counter()
    reads = lambda pic: read_grid(stamper, pic)
    rows, grids = collect(stamper.protect, reads, photos, nonphotos, args.variants, args.seed)
    res = {
        "model": args.model,
        "photos": len(photos),
        "nonphotos": len(nonphotos),
        "variants": args.variants,
        "samples": len(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "read_sets": summarise(rows, grids),
        "read_sets_photo_threshold": summarise(rows, grids, photos_only=True),
    }
    for key in ("read_sets", "read_sets_photo_threshold"):
        print(f"\n== thresholds from {'clean photos' if key.endswith('threshold') else 'clean photos and non-photos'}")
        for name, r in res[key].items():
            print(f"\n{name}: threshold {r['threshold']:.3f}, clean above {r['clean_above']}")
            print("  " + ", ".join(f"{lab} {v:.2f}" for lab, v in r["tpr"].items()))
    heldout.write_json(args.out, res)
    if args.out is not None:
        save_reads(args.out, rows, grids=grids, scales=np.array(SCALES), angles=np.array(ANGLES))


def save_reads(out: Path, rows, **arrays: np.ndarray) -> None:
    """Every read of every sample beside the JSON ``out`` (its ``.npz``), with each sample's kind,
    edit and source: other read sets can be tried without scanning again."""
    columns = {name: np.array([r[i] for r in rows]) for i, name in enumerate(("sources", "kinds", "edits"))}
    np.savez_compressed(out.with_suffix(".npz"), **columns, **arrays)


if __name__ == "__main__":
    main()
