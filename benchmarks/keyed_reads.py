"""Stamp v3 design study, candidate C: a keyed stamp (``message_bits``, configs/keyed_study.yaml).
The encoder writes the platform's key into the stamp; the scanner reads bits, and the score of a
picture is how well they match the key (:func:`deepraft.models.functional.keyed_score`). Measured
on candidate A's edits with candidate A's draws (the same seed gives the same crops, angles and
pastes as ``benchmarks/geometry_search.py``), at the scales candidate A read (no turned reads).

Two thresholds per read set: the bound by construction, which holds for any picture whatever it
looks like (a read of bits unrelated to the key passes t with probability at most exp(-t^2/2);
a read set of R reads, at most R times that), and the empirical FPR-1e-3 point of the clean
samples, photos and non-photos (val packages of ``--nonphoto``) together, as candidate A's.

    python benchmarks/keyed_reads.py RUN [--data ../shared/data/photos/val] [--photos 29]
        [--nonphoto ../shared/data/nonphoto] [--variants 2] [--key-seed 0] [--out FILE]

RUN: a training run folder of a keyed model (its latest checkpoint). A diagnosis for the v3
design, not a deployed read: the runtime reads zero-bit models only.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepraft.core.imageio import Picture, work_copy
from deepraft.core.weights_io import WEIGHTS_NAME, latest_checkpoint, load_weights, read_model_config
from deepraft.models import StampModel, build_model
from deepraft.models import functional as Fn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import geometry_search
import heldout

SCALES = geometry_search.SCALES
READ_SETS: dict[str, tuple[float, ...]] = {"deployed (scales 1, 2)": (1.0, 2.0), "+ scales 0.35-0.71": SCALES}
"""Candidate read sets (scales of the working copy); the score of a set is its largest read."""


def load_keyed(run: Path) -> StampModel:
    """The keyed model of ``run``'s latest checkpoint, in eval mode on the CPU."""
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise FileNotFoundError(f"{run}: no checkpoint")
    cfg = read_model_config(ckpt / WEIGHTS_NAME)
    if not cfg.message_bits:
        raise ValueError(f"{run}: not a keyed model (message_bits is 0)")
    model = build_model(cfg)
    load_weights(model, ckpt / WEIGHTS_NAME)
    return model.eval()


def draw_key(bits: int, seed: int) -> torch.Tensor:
    """The platform's key: ``bits`` random bits in {0, 1}."""
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 2, bits)).float()


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float().div(255.0)


@torch.inference_mode()
def protect(model: StampModel, key: torch.Tensor, pic: Picture) -> Picture:
    """``pic`` stamped with ``key`` (full resolution, 8 bits)."""
    stamped = model.stamp(_tensor(pic.rgb), message=key[None])
    return pic.with_rgb((stamped[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8))


@torch.inference_mode()
def keyed_reads(model: StampModel, key: torch.Tensor, pic: Picture) -> np.ndarray:
    """(len(SCALES),) keyed scores of ``pic``'s working copy read at each of :data:`SCALES`
    (read from a copy at the largest scale, as a deployed scan reads its scales)."""
    top = max(SCALES)
    copy = _tensor(work_copy(pic.rgb, round(model.cfg.work_size * top), model.cfg.work_mode))
    bits = torch.cat([model.read(Fn.rescale(copy, s / top)) for s in SCALES])
    return Fn.keyed_score(bits, key).numpy()


def summarise(rows, reads: np.ndarray, fpr: float = 1e-3) -> dict:
    """Per read set: TPR per edit and clean samples above, at the bound and at the empirical
    FPR-``fpr`` point of every clean sample; the highest clean score per kind."""
    kinds = np.array([k for _, k, _ in rows])
    labels = np.array([e for _, _, e in rows])
    clean = kinds != "stamped"
    out = {}
    for name, scales in READ_SETS.items():
        sc = reads[:, [SCALES.index(s) for s in scales]].max(axis=1)
        neg = np.sort(sc[clean])
        empirical = float(neg[neg.size - 1 - int(math.floor(fpr * neg.size))])
        entry: dict = {"scales": list(scales), "highest_clean": {}}
        for kind in sorted(set(kinds[clean])):
            entry["highest_clean"][str(kind)] = float(sc[kinds == kind].max())
        for tname, thr in (("bound", Fn.keyed_threshold(fpr, len(scales))), ("empirical", empirical)):
            tpr, above = geometry_search.rates_at(sc, kinds, labels, thr)
            entry[tname] = {"threshold": thr, "tpr": tpr, "clean_above": above}
        out[name] = entry
    return out


def main() -> None:
    ap = geometry_search.study_parser(__doc__)
    ap.add_argument("--key-seed", type=int, default=0)
    args = ap.parse_args()
    model = load_keyed(Path(args.model))
    key = draw_key(model.cfg.message_bits, args.key_seed)
    photos, nonphotos = geometry_search.study_pictures(args)
    t0 = time.perf_counter()
    rows, reads = geometry_search.collect(
        lambda pic: protect(model, key, pic),
        lambda pic: keyed_reads(model, key, pic),
        photos,
        nonphotos,
        args.variants,
        args.seed,
    )
    res = {
        "model": str(args.model),
        "message_bits": model.cfg.message_bits,
        "key_seed": args.key_seed,
        "photos": len(photos),
        "nonphotos": len(nonphotos),
        "variants": args.variants,
        "samples": len(rows),
        "seconds": round(time.perf_counter() - t0, 1),
        "read_sets": summarise(rows, reads),
    }
    for name, r in res["read_sets"].items():
        print(f"\n{name}: highest clean {r['highest_clean']}")
        for tname in ("bound", "empirical"):
            t = r[tname]
            print(f"  {tname} {t['threshold']:.2f}, clean above {t['clean_above']}")
            print("    " + ", ".join(f"{lab} {v:.2f}" for lab, v in t["tpr"].items()))
    heldout.write_json(args.out, res)
    if args.out is not None:
        geometry_search.save_reads(args.out, rows, reads=reads, scales=np.array(SCALES))


if __name__ == "__main__":
    main()
