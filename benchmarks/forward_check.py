"""A quick held-out check of a model while it trains: invisibility and the cheapest forwarder
edits, on a few photos that no decision was tuned on.

    python benchmarks/forward_check.py MODEL [--data ../shared/data/photos/val] [--photos 8] [--out FILE]

MODEL: a bundled name, a card folder or a training run folder (its latest checkpoint). Per
photo: PSNR and SSIMULACRA 2 of the stamp; then for each edit (the pixel grid shifted by 2 px,
a light crop to 95 %, mirror, turns, tilts with black corners or cropped, borders, a collage
into another photo, an off-centre crop to 25 %, a stretch, a caption bar, JPEG, blur, a
quarter-size copy, noise of sigma 0.1, brightness doubled) the scores of the edited stamped and
clean copies. The threshold is the highest clean score over every edit and photo (a run has no
calibrated one): TPR there is what the model separates at zero false positives on these photos.
That threshold is far looser than a card's calibrated one (stamp v2 at stage 2: 0.09 here, 1.76
calibrated at FPR 1e-3), so watch the median scores too. For a decision, use `deepraft eval` on
the test photos with a calibrated card.
"""

from __future__ import annotations

import dataclasses
import io
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

import deepraft
from deepraft.core.data import find_images
from deepraft.core.measures import psnr
from deepraft.edits.benign import brightness, noise
from deepraft.evaluation.quality import ssimulacra2
from deepraft.models.stamp import check_scan_scales

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402

T = Image.Transpose
Edit = Callable[[Image.Image, int], Image.Image]


def _jpeg(im: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _pad(im: Image.Image, fraction: float, colour: tuple[int, int, int]) -> Image.Image:
    w, h = im.size
    canvas = Image.new("RGB", (round(w * (1 + fraction)), round(h * (1 + fraction))), colour)
    canvas.paste(im, (round(w * fraction / 2), round(h * fraction / 2)))
    return canvas


def _tilt_cropped(im: Image.Image, degrees: float) -> Image.Image:
    w, h = im.size
    c, s = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    k = min(w / (w * c + h * s), h / (w * s + h * c))
    cw, ch = int(w * k), int(h * k)
    box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
    return im.rotate(degrees, resample=Image.Resampling.BICUBIC).crop(box)


def _crop_corner(im: Image.Image, i: int) -> Image.Image:
    w, h = im.size
    cw, ch = round(w * 0.5), round(h * 0.5)
    x0, y0 = (i % 2) * (w - cw), ((i // 2) % 2) * (h - ch)
    return im.crop((x0, y0, x0 + cw, y0 + ch))


def _crop_fraction(im: Image.Image, area: float, i: int) -> Image.Image:
    """Keep ``area`` of the frame, the cut split between the sides by the photo's index: the
    pixel grid moves by a fraction of a working pixel, as a light crop by a user does."""
    w, h = im.size
    cw, ch = round(w * area**0.5), round(h * area**0.5)
    x0, y0 = (w - cw) * (i % 3) // 2, (h - ch) * ((i // 3) % 3) // 2
    return im.crop((x0, y0, x0 + cw, y0 + ch))


def _caption(im: Image.Image) -> Image.Image:
    out = im.copy()
    w, h = out.size
    out.paste((250, 250, 250), (0, h - int(0.15 * h), w, h))
    return out


def edits(backgrounds: list[Image.Image]) -> dict[str, Edit]:
    def collage(im: Image.Image, i: int) -> Image.Image:
        bg = backgrounds[i % len(backgrounds)].copy()
        s = 0.5 * min(bg.size[0] / im.size[0], bg.size[1] / im.size[1])
        small = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.BICUBIC)
        bg.paste(small, (bg.size[0] // 4, bg.size[1] // 5))
        return bg

    return {
        "none": lambda im, i: im,
        "shift 2 px": lambda im, i: im.crop((2, 2, im.size[0], im.size[1])),
        "crop 95 %": lambda im, i: _crop_fraction(im, 0.95, i),
        "jpeg 50": lambda im, i: _jpeg(im, 50),
        "jpeg 30": lambda im, i: _jpeg(im, 30),
        "resize 0.25": lambda im, i: im.resize((im.size[0] // 4, im.size[1] // 4), Image.Resampling.BICUBIC),
        "blur 2": lambda im, i: im.filter(ImageFilter.GaussianBlur(2)),
        "hflip": lambda im, i: im.transpose(T.FLIP_LEFT_RIGHT),
        "vflip": lambda im, i: im.transpose(T.FLIP_TOP_BOTTOM),
        "rot90": lambda im, i: im.transpose(T.ROTATE_90),
        "rot180": lambda im, i: im.transpose(T.ROTATE_180),
        "rot270": lambda im, i: im.transpose(T.ROTATE_270),
        "tilt 10, black corners": lambda im, i: im.rotate(10, resample=Image.Resampling.BICUBIC),
        "tilt -25, black corners": lambda im, i: im.rotate(-25, resample=Image.Resampling.BICUBIC),
        "tilt 15, cropped": lambda im, i: _tilt_cropped(im, 15),
        "border 10 % white": lambda im, i: _pad(im, 0.10, (255, 255, 255)),
        "border 30 % black": lambda im, i: _pad(im, 0.60, (0, 0, 0)),
        "collage at half size": collage,
        "crop 25 % at a corner": _crop_corner,
        "stretch 1.2": lambda im, i: im.resize((round(im.size[0] * 1.2), im.size[1]), Image.Resampling.BICUBIC),
        "caption bar 15 %": lambda im, i: _caption(im),
        "noise 0.1": lambda im, i: noise(im, 0.1, np.random.default_rng(i)),
        "brightness 2": lambda im, i: brightness(im, 2.0, np.random.default_rng(i)),
    }


def check(
    model: str, files: list[Path], backgrounds: list[Image.Image], scan_scales: list[float] | None = None
) -> dict[str, object]:
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
    table = edits(backgrounds)
    scores: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in table}
    quality = []
    for i, f in enumerate(files):
        img = Image.open(f).convert("RGB")
        stamped = stamper.protect(img)
        a, b = np.asarray(img), np.asarray(stamped)
        quality.append({"photo": f.name, "psnr": psnr(a, b), "ssimulacra2": ssimulacra2(a, b)})
        for name, edit in table.items():
            s, c = stamper.scan_batch([edit(stamped, i), edit(img, i)])
            scores[name][0].append(s.score)
            scores[name][1].append(c.score)
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
    if len(files) < args.photos + 2:
        raise SystemExit(f"{args.data}: needs at least {args.photos + 2} photos")
    backgrounds = [Image.open(f).convert("RGB") for f in files[-4:]]
    res = check(args.model, files[: args.photos], backgrounds, args.scan_scales)
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
