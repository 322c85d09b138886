"""Where in frequency does the stamp live? For a few held-out photos, the power spectrum of
the stamp's residual on the working copy (luminance), pooled over photos as shares of its power
by spatial frequency across (fx) and down (fy), in cycles per working-copy pixel, and the share
of its 20 strongest bins per photo.

    python benchmarks/stamp_spectrum.py MODEL [--data ../shared/data/photos/val] [--photos 12] [--out FILE]

MODEL: a bundled name, a card folder or a training run folder. A stamp whose power sits in a
narrow band is what a scanner learns to key on, and where a forger's grating (at that band, or
at half of it in a read at twice the working size) looks like it. A diagnosis, not a deployed read.
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
from deepraft.evaluation.adversaries.forgery import fft_power, top_share

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402

EDGES = (0.0, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5)  # |frequency| bands, cycles per pixel


def band_shares(residual: np.ndarray) -> tuple[np.ndarray, float]:
    """(shares of the power of the (h,w) ``residual`` on the grid |fy| band x |fx| band of
    :data:`EDGES`, summing to 1; share of its 20 strongest FFT bins)."""
    power = fft_power(residual)
    fy, fx = np.meshgrid(np.abs(np.fft.fftfreq(power.shape[0])), np.abs(np.fft.fftfreq(power.shape[1])), indexing="ij")
    grid, _, _ = np.histogram2d(fy.ravel(), fx.ravel(), bins=[EDGES, EDGES], weights=power.ravel())
    return grid / max(float(power.sum(dtype=np.float64)), 1e-30), top_share(power, 20)


def measure(model: str, files: list[Path]) -> dict[str, object]:
    stamper = deepraft.load(model, device="cpu")
    grids, tops = [], []
    for f in files:
        work = stamper.copies.work_batch([picture_from_pil(Image.open(f).convert("RGB"))])
        with torch.inference_mode():
            r = stamper.model.residual(work)[0].mean(dim=0).float().numpy()
        g, top = band_shares(r)
        grids.append(g)
        tops.append(top)
    mean = np.mean(grids, axis=0)
    labels = [f"{a:g}-{b:g}" for a, b in zip(EDGES, EDGES[1:])]
    return {
        "model": model,
        "photos": [f.name for f in files],
        "bands_cycles_per_px": labels,
        "share_by_fy_fx": mean.round(4).tolist(),
        "share_fy_under_0.05": float(mean[:2].sum()),
        "share_fx_under_0.05": float(mean[:, :2].sum()),
        "top20_share_per_photo": [round(t, 4) for t in tops],
    }


def main() -> None:
    ap = heldout.parser(__doc__, photos=12)
    args = ap.parse_args()
    files = find_images(args.data)[: args.photos]
    if not files:
        raise SystemExit(f"{args.data}: no photos")
    res = measure(args.model, files)
    labels = res["bands_cycles_per_px"]
    print("share of the stamp's power; rows |fy| (down), columns |fx| (across), cycles per pixel")
    print(" " * 10 + "".join(f"{b:>10s}" for b in labels))  # type: ignore[union-attr]
    for lab, row in zip(labels, res["share_by_fy_fx"]):  # type: ignore[arg-type]
        print(f"{lab:>10s}" + "".join(f"{v:10.3f}" for v in row))
    print(f"|fy| < 0.05: {res['share_fy_under_0.05']:.3f}; |fx| < 0.05: {res['share_fx_under_0.05']:.3f}")
    heldout.write_json(args.out, res)


if __name__ == "__main__":
    main()
