"""``deepraft eval``: imperceptibility and robustness of a model on full-resolution photos.

For every photo: stamp it at full resolution and measure PSNR / SSIM / MS-SSIM (and LPIPS
when available). Then for every condition of the attack grid and every variant, apply the
same edit (same random draws) to the stamped and to the clean photo and scan both. Variant 0
edits the whole photo; variants 1..K-1 first take a light random crop (85-100 % of the area,
same aspect ratio), so each photo gives K distinct stamped and K distinct clean samples per
condition, enough clean samples for an FPR of 1e-3 to be resolved.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from ..data import sample_seed
from ..imageio import ImageError, atomic_write_bytes, work_copy
from .distortions import GRID, QUICK_GRID, Condition, conditions, crop
from .metrics import paper_accuracy, rate_above, roc_auc, tpr_at_fpr
from .quality import LpipsUnavailable, lpips_metric, ms_ssim, ssim
from .quick import psnr_uint8


@dataclass
class EvalSettings:
    grid: list[tuple[str, list]] = field(default_factory=lambda: list(GRID))
    variants: int = 34
    seed: int = 0
    fprs: tuple[float, ...] = (1e-2, 1e-3)
    max_photos: int | None = None

    @classmethod
    def quick(cls) -> "EvalSettings":
        return cls(grid=list(QUICK_GRID), variants=4, max_photos=8)


def view_variant(img: Image.Image, variant: int, rng: np.random.Generator) -> Image.Image:
    """Variant 0: the picture itself; others: a light random crop (85-100 % of the area)."""
    return img if variant == 0 else crop(img, float(rng.uniform(0.85, 1.0)), rng)


def _summarise(cond: Condition, pos: np.ndarray, neg: np.ndarray, threshold: float,
               fprs: Sequence[float]) -> dict[str, object]:
    row: dict[str, object] = {
        "attack": cond.attack, "strength": cond.strength, "label": cond.label,
        "n_stamped": int(pos.size), "n_clean": int(neg.size),
        "tpr_at_calibrated": rate_above(pos, threshold), "fpr_at_calibrated": rate_above(neg, threshold),
        "roc_auc": roc_auc(pos, neg), "paper_accuracy": paper_accuracy(pos, neg, 0.0),
    }
    for f in fprs:
        # an FPR below 1/n cannot be resolved by n clean samples: say so instead of a number
        row[f"tpr_at_fpr_{f:g}"] = tpr_at_fpr(pos, neg, f) if f * neg.size >= 1 else None
    return row


def _eval_photo(stamper, f: Path, pi: int, conds: list[Condition], settings: EvalSettings, lp=None):
    """Stamp one photo, measure it, and scan every condition x variant of its stamped and clean copies."""
    pic = stamper.read(f)
    stamped = stamper.protect_pictures([pic])[0]
    row = {"photo": f.name, "width": pic.size[0], "height": pic.size[1],
           "psnr": psnr_uint8(stamped.rgb, pic.rgb), "ssim": ssim(stamped.rgb, pic.rgb),
           "ms_ssim": ms_ssim(stamped.rgb, pic.rgb)}
    if lp is not None:
        row["lpips"] = lp(stamped.rgb, pic.rgb)
    s_img, c_img = Image.fromarray(stamped.rgb), Image.fromarray(pic.rgb)
    samples = []
    for ci, cond in enumerate(conds):
        arrays, meta = [], []
        for v in range(settings.variants):
            seed = sample_seed(settings.seed, pi, ci, v)
            for kind, img in (("stamped", s_img), ("clean", c_img)):
                rng = np.random.default_rng(seed)
                edited = cond.apply(view_variant(img, v, rng), rng)
                arrays.append(work_copy(np.asarray(edited.convert("RGB")), stamper.work_size))
                meta.append((kind, v))
        for (kind, v), r in zip(meta, stamper.scan_work_copies(arrays)):
            samples.append((f.name, cond.attack, "" if cond.strength is None else str(cond.strength), v, kind, r.score))
    return row, samples


_WORKER: dict = {}
"""Per-worker-process cache of the stamper (filled by the pool initializer)."""


def _worker_init(model: str, max_pixels: int | None) -> None:
    import torch

    from ..api import load

    torch.set_num_threads(1)
    _WORKER["stamper"] = load(model, device="cpu", max_pixels=max_pixels)


def _worker_photo(args):
    f, pi, conds, settings = args
    try:
        return _eval_photo(_WORKER["stamper"], f, pi, conds, settings)
    except ImageError as exc:
        return exc


def run_eval(stamper, files: Sequence[Path], out_dir: Path, settings: EvalSettings,
             progress: Callable[[Iterable], Iterable] | None = None, workers: int = 0) -> dict[str, object]:
    """Run the evaluation; write ``images.csv``, ``samples.csv`` and ``summary.json`` under
    ``out_dir`` and return the summary. ``workers`` > 0 spreads the photos over processes
    (CPU only; each loads the model from ``stamper.card``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    conds = conditions(settings.grid)
    files = list(files)[: settings.max_photos] if settings.max_photos else list(files)
    threshold = stamper.card.threshold()
    try:
        lp = lpips_metric()
        lpips_note = "LPIPS (AlexNet) computed"
    except LpipsUnavailable as exc:
        lp, lpips_note = None, str(exc)
    images: list[dict[str, object]] = []
    samples: list[tuple[str, str, str, int, str, float]] = []
    failed: list[str] = []
    if workers > 0 and lp is None and stamper.device.type == "cpu":
        from concurrent.futures import ProcessPoolExecutor

        card = stamper.card
        card_path = str(card.path if (card.path / "card.json").exists() else card.weights_path)
        with ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(card_path, stamper.max_pixels)) as pool:
            jobs = pool.map(_worker_photo, [(f, pi, conds, settings) for pi, f in enumerate(files)])
            for out in progress(jobs) if progress else jobs:
                if isinstance(out, ImageError):
                    failed.append(str(out))
                else:
                    images.append(out[0])
                    samples += out[1]
    else:
        for pi, f in enumerate(progress(files) if progress else files):
            try:
                row, photo_samples = _eval_photo(stamper, f, pi, conds, settings, lp)
            except ImageError as exc:
                failed.append(str(exc))
                continue
            images.append(row)
            samples += photo_samples
    if not images:
        raise ValueError("eval: no readable photos")
    with (out_dir / "images.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(images[0]))
        w.writeheader()
        w.writerows(images)
    with (out_dir / "samples.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["photo", "attack", "strength", "variant", "kind", "score"])
        w.writerows(samples)
    by_cond: dict[tuple[str, str], dict[str, list[float]]] = {}
    for _, attack, strength, _, kind, score in samples:
        by_cond.setdefault((attack, strength), {"stamped": [], "clean": []})[kind].append(score)
    rows = []
    for cond in conds:
        d = by_cond[(cond.attack, "" if cond.strength is None else str(cond.strength))]
        rows.append(_summarise(cond, np.array(d["stamped"]), np.array(d["clean"]), threshold, settings.fprs))

    def stat(key: str) -> dict[str, float] | None:
        vals = np.array([r[key] for r in images if key in r], dtype=np.float64)
        if not vals.size:
            return None
        return {"mean": float(vals.mean()), "min": float(vals.min()), "max": float(vals.max())}

    worst = min(images, key=lambda r: r["ssim"])
    shown = write_before_after(stamper, next(f for f in files if Path(f).name == worst["photo"]), out_dir)
    summary = {
        "model": stamper.card.name, "threshold": threshold, "calibrated_fpr": stamper.card.default_fpr,
        "n_photos": len(images), "variants_per_condition": settings.variants, "seed": settings.seed,
        "failed": failed, "lpips_note": lpips_note,
        "imperceptibility": {k: stat(k) for k in ("psnr", "ssim", "ms_ssim", "lpips") if stat(k)},
        "conditions": rows, "before_after": shown,
        "method": __doc__.strip().split("\n\n", 1)[1].replace("\n", " "),
    }
    atomic_write_bytes(out_dir / "summary.json", (json.dumps(summary, indent=2, default=_json_default) + "\n").encode())
    return summary


def flattest_box(rgb: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The ``size`` x ``size`` window (stride size/2) whose luminance varies least: where a
    stamp would show first (sky, walls, skin)."""
    h, w = rgb.shape[:2]
    size = min(size, h, w)
    y = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    step = max(1, size // 2)
    best, box = np.inf, (0, 0, size, size)
    for top in range(0, h - size + 1, step):
        for left in range(0, w - size + 1, step):
            v = float(y[top:top + size, left:left + size].std())
            if v < best:
                best, box = v, (left, top, left + size, top + size)
    return box


def write_before_after(stamper, file: Path, out_dir: Path, size: int = 256, gain: float = 10.0) -> dict[str, object]:
    """``before_after.png``: the flattest window of ``file`` at 100 % zoom, clean | stamped |
    the difference amplified ``gain`` times around mid-grey."""
    pic = stamper.read(file)
    stamped = stamper.protect_pictures([pic])[0]
    box = flattest_box(pic.rgb, size)
    left, top, right, bottom = box
    a = pic.rgb[top:bottom, left:right, :3].astype(np.float32)
    b = stamped.rgb[top:bottom, left:right, :3].astype(np.float32)
    diff = np.clip(128.0 + gain * (b - a), 0, 255)
    gap = np.full((a.shape[0], 8, 3), 255, dtype=np.uint8)
    strip = np.concatenate([a.astype(np.uint8), gap, b.astype(np.uint8), gap, diff.astype(np.uint8)], axis=1)
    buf = io.BytesIO()
    Image.fromarray(strip).save(buf, format="PNG")
    atomic_write_bytes(out_dir / "before_after.png", buf.getvalue())
    return {"photo": Path(file).name, "box": list(box), "gain": gain,
            "psnr_window": psnr_uint8(b.astype(np.uint8), a.astype(np.uint8))}


def _json_default(o: object) -> object:
    if isinstance(o, float) and math.isnan(o):
        return None
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))
