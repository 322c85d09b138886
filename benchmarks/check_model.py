"""Measure a model card's headline numbers on full-resolution photos.

    python benchmarks/check_model.py [--model default] [--data ../shared/data/photos/test]

Prints mean/min PSNR and, at the card's calibrated FPR-1e-3 threshold, the TPR on unmodified
stamped photos and after JPEG quality 50, and the FPR on the clean originals (also after
JPEG 50). Then, per photo, the perceptual cost of the stamp, SSIMULACRA 2 and Butteraugli
(max-norm), beside the same photo re-saved as JPEG quality 90 and 95 (about 2 CPU-seconds
per megapixel and copy; --no-perceptual skips them). Writes
benchmarks/results/check_<model>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import deepraft
from deepraft.core.data import find_images
from deepraft.core.imageio import read_images
from deepraft.evaluation.headline import headline_check
from deepraft.evaluation.quality import column, column_stats, jpeg_copy, perceptual, perceptual_setup

HERE = Path(__file__).resolve().parent


def perceptual_check(stamper, files: Sequence[Path], jpeg_references: Sequence[int]) -> dict[str, object]:
    """SSIMULACRA 2 and Butteraugli of each stamped photo and of its JPEG re-saves, per photo and
    summarised (mean / min / max and the worst photo per column)."""
    tool, note = perceptual_setup(jpeg_references)
    rows: list[dict[str, object]] = []
    failed: list[str] = []
    t0 = time.perf_counter()
    megapixels = 0.0
    for f, pic in read_images(files, failed, stamper.max_pixels):
        stamped = stamper.protect(pic)
        refs = {f"jpeg{q}": jpeg_copy(pic.rgb, q) for q in jpeg_references}
        rows.append({"file": str(f), **perceptual(pic.rgb, {"": stamped.rgb, **refs}, tool)})
        megapixels += pic.size[0] * pic.size[1] / 1e6
    seconds = time.perf_counter() - t0
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k != "file"]
    return {
        "note": note,
        "jpeg_references": list(jpeg_references),
        "seconds_per_megapixel": round(seconds / megapixels, 2) if megapixels else None,
        "summary": {k: column_stats(rows, k, "file") for k in keys},
        "per_image": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "photos" / "test")
    ap.add_argument("--fpr", type=float, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-perceptual", action="store_true", help="skip SSIMULACRA 2 and Butteraugli")
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: photo folder not found")
    stamper = deepraft.load(args.model, device=args.device)
    t0 = time.perf_counter()
    files = find_images(args.data)
    report = headline_check(stamper, files, fpr=args.fpr)
    result = {
        "model": stamper.card.name,
        "data": str(args.data.resolve()),
        "seconds": round(time.perf_counter() - t0, 1),
        **report.as_dict(),
        "per_image": report.per_image,
    }
    if not args.no_perceptual:
        result["perceptual"] = perceptual_check(stamper, files, (90, 95))
    out = args.out or HERE / "results" / f"check_{stamper.card.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"model {result['model']} on {report.n_images} photos ({args.data})")
    print(f"  PSNR mean {report.mean_psnr:.2f} dB, min {report.min_psnr:.2f} dB")
    print(f"  threshold {report.threshold:.3f} (FPR {report.fpr:g})")
    for k, v in report.tpr.items():
        print(f"  TPR {k:8s} {v:.3f}   clean FPR {k:8s} {report.fpr_clean[k]:.3f}")
    if "perceptual" in result:
        print_perceptual(result["perceptual"])
    print(f"  wrote {out}")


def print_perceptual(res: dict) -> None:
    refs = [f"jpeg{q}" for q in res["jpeg_references"]]
    for metric, label in (("ssimulacra2", "SSIMULACRA 2"), ("butteraugli_max", "Butteraugli max")):
        st = res["summary"].get(metric)
        if not st:
            continue
        beside = ", ".join(f"JPEG q{r[4:]} {res['summary'][column(metric, r)]['mean']:.2f}" for r in refs)
        print(
            f"  {label:16s} mean {st['mean']:.2f}, min {st['min']:.2f}, max {st['max']:.2f}, worst "
            f"{Path(st['worst']['file']).name} ({st['worst']['value']:.2f}); {beside}"
        )
    print(f"  {res['note']} {res['seconds_per_megapixel']} s per megapixel.")


if __name__ == "__main__":
    main()
