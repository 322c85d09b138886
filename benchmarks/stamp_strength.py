"""How visible a model's stamp is at other strengths: SSIMULACRA 2 and PSNR of the photo plus
``scale`` times the stamp, for a few scales, beside the photo re-saved as JPEG q90. Used to pick
a PSNR target before training at it (a weaker stamp of the same shape is what a fine-tune at a
higher target starts from).

    python benchmarks/stamp_strength.py MODEL [--data ../shared/data/photos/val] [--first 8]
        [--photos 8] [--scale 1 0.5 0.35] [--set mask_floor=0.001] [--out FILE]

MODEL: a bundled name, a card folder or a training run folder (its latest checkpoint).
``--set`` changes a field of the model's config before stamping (the mask's floor or gain, say)
to see what the post-processing alone does to the score; the stamp is then rescaled by its
PSNR cap as in the model.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

import deepraft
from deepraft.core.data import find_images
from deepraft.core.measures import psnr
from deepraft.evaluation.quality import jpeg_copy, ssimulacra2, to_tensor
from deepraft.models import functional as Fn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402


def parse_sets(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


@torch.inference_mode()
def full_residual(model: torch.nn.Module, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(photo, stamp) as (1,3,H,W) floats in [0,1], the stamp upsampled to the photo's size."""
    x = to_tensor(rgb)
    r = model.residual(model.work(x))
    return x, Fn.upsample(r, x.shape[-2], x.shape[-1])


def to_uint8(y: torch.Tensor) -> np.ndarray:
    return (y.clamp(0, 1)[0].permute(1, 2, 0) * 255.0 + 0.5).clamp(0, 255).byte().numpy()


def measure(model: torch.nn.Module, files: list[Path], scales: list[float]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        x, r = full_residual(model, rgb)
        row: dict[str, object] = {"photo": f.name}
        for k in scales:
            stamped = to_uint8(x + k * r)
            row[f"x{k:g}"] = {"psnr": psnr(rgb, stamped), "ssimulacra2": ssimulacra2(rgb, stamped)}
        jpeg = jpeg_copy(rgb, 90)
        row["jpeg90"] = {"psnr": psnr(rgb, jpeg), "ssimulacra2": ssimulacra2(rgb, jpeg)}
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, object]]) -> dict[str, dict[str, float]]:
    keys = [k for k in rows[0] if k != "photo"]
    out = {}
    for k in keys:
        cols = {m: [float(r[k][m]) for r in rows] for m in ("psnr", "ssimulacra2")}  # type: ignore[index]
        out[k] = {
            "psnr_mean": float(np.mean(cols["psnr"])),
            "ssimulacra2_mean": float(np.mean(cols["ssimulacra2"])),
            "ssimulacra2_min": float(np.min(cols["ssimulacra2"])),
        }
    return out


def main() -> None:
    ap = heldout.parser(__doc__, photos=8)
    ap.add_argument("--first", type=int, default=8, help="index of the first photo (sorted names)")
    ap.add_argument("--scale", type=float, nargs="+", default=[1.0, 0.5, 0.35])
    ap.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE of the model config")
    args = ap.parse_args()
    files = find_images(args.data)[args.first : args.first + args.photos]
    if not files:
        raise SystemExit(f"{args.data}: no photos from index {args.first}")
    model = deepraft.load(args.model, device="cpu").model
    sets = parse_sets(args.sets)
    try:
        model.cfg = dataclasses.replace(model.cfg, **sets)
    except TypeError as exc:
        raise SystemExit(f"--set: {exc}") from exc
    rows = measure(model, files, args.scale)
    summary = summarise(rows)
    for k, s in summary.items():
        print(
            f"{k:8s} PSNR {s['psnr_mean']:5.1f} dB  SSIMULACRA 2 mean {s['ssimulacra2_mean']:5.1f}"
            f"  min {s['ssimulacra2_min']:5.1f}"
        )
    res = {"model": args.model, "set": sets, "photos": [f.name for f in files], "summary": summary, "rows": rows}
    heldout.write_json(args.out, res)


if __name__ == "__main__":
    main()
