"""Measure a model card's headline numbers on full-resolution photos.

    python benchmarks/check_model.py [--model default] [--data ../shared/data/photos/test]

Prints mean/min PSNR and, at the card's calibrated FPR-1e-3 threshold, the TPR on unmodified
stamped photos and after JPEG quality 50, and the FPR on the clean originals (also after
JPEG 50). Writes benchmarks/results/check_<model>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import deepraft
from deepraft.data import find_images
from deepraft.eval import quick_check

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "photos" / "test")
    ap.add_argument("--fpr", type=float, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: photo folder not found")
    stamper = deepraft.load(args.model, device=args.device)
    t0 = time.perf_counter()
    report = quick_check(stamper, find_images(args.data), fpr=args.fpr)
    result = {"model": stamper.card.name, "data": str(args.data.resolve()), "seconds": round(time.perf_counter() - t0, 1),
              **report.as_dict(), "per_image": report.per_image}
    out = args.out or HERE / "results" / f"check_{stamper.card.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"model {result['model']} on {report.n_images} photos ({args.data})")
    print(f"  PSNR mean {report.mean_psnr:.2f} dB, min {report.min_psnr:.2f} dB")
    print(f"  threshold {report.threshold:.3f} (FPR {report.fpr:g})")
    for k, v in report.tpr.items():
        print(f"  TPR {k:8s} {v:.3f}   clean FPR {k:8s} {report.fpr_clean[k]:.3f}")
    print(f"  wrote {out}")


if __name__ == "__main__":
    main()
