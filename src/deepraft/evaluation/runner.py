"""``deepraft eval``: imperceptibility and robustness of a model on full-resolution photos.

The method, as recorded in ``summary.json``, is :data:`METHOD`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from deepraft.core.data import sample_seed
from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.imageio import ImageError, read_image
from deepraft.core.measures import luma, psnr_uint8
from deepraft.edits.benign import crop
from deepraft.edits.grids import GRID, QUICK_GRID, Condition, conditions
from deepraft.evaluation.kernel import files_scenery, grid_edits, measure, others_of
from deepraft.evaluation.metrics import paper_accuracy, rate_above, roc_auc, tpr_at_fpr
from deepraft.evaluation.quality import (
    LpipsUnavailable,
    column,
    column_stats,
    jpeg_copy,
    lpips_metric,
    ms_ssim,
    perceptual,
    perceptual_setup,
    ssim,
)

if TYPE_CHECKING:
    from deepraft.runtime.stamper import Stamper


_Samples = list[tuple[str, str, str, int, str, float]]
"""(photo, edit, strength, variant, kind, score) rows of ``samples.csv``."""

METHOD = (
    "For every photo: stamp it at full resolution and measure PSNR / SSIM / MS-SSIM (and LPIPS "
    "when available) against the original, and the perceptual SSIMULACRA 2 and Butteraugli "
    "(max-norm) of the stamped photo and, for scale, of the original re-saved as JPEG quality 90 "
    "and 95 (Pillow, 4:2:0). Then for every condition of the edit grid and every variant, apply the "
    "same edit (same random draws) to the stamped and to the clean photo and scan both. Variant 0 "
    "edits the whole photo; variants 1..K-1 first take a light random crop (85-100 % of the area, "
    "same aspect ratio), so each photo gives K distinct stamped and K distinct clean samples per "
    "condition, enough clean samples for an FPR of 1e-3 to be resolved."
)
"""How ``deepraft eval`` measures (the ``method`` of ``summary.json``; a constant, not the module
docstring, which ``python -OO`` strips)."""


@dataclass
class EvalSettings:
    grid: list[tuple[str, list]] = field(default_factory=lambda: list(GRID))
    variants: int = 34
    seed: int = 0
    fprs: tuple[float, ...] = (1e-2, 1e-3)
    max_photos: int | None = None
    perceptual: bool = True
    """SSIMULACRA 2 and Butteraugli per photo (a few seconds per megapixel)."""
    jpeg_references: tuple[int, ...] = (90, 95)
    """JPEG qualities of the re-saved originals measured beside the stamp."""
    before_after: int = 3
    """Photos shown at 100 % (those with the worst SSIMULACRA 2, else the worst SSIM)."""

    @classmethod
    def quick(cls) -> EvalSettings:
        """A few representative edits, 4 variants, 8 photos; one JPEG reference (q90): the
        perceptual metrics cost about 2 CPU-seconds per megapixel and copy (SSIMULACRA 2 and
        Butteraugli run side by side on two cores)."""
        return cls(grid=list(QUICK_GRID), variants=4, max_photos=8, jpeg_references=(90,))


def view_variant(img: Image.Image, variant: int, rng: np.random.Generator) -> Image.Image:
    """Variant 0: the picture itself; others: a light random crop (85-100 % of the area)."""
    return img if variant == 0 else crop(img, float(rng.uniform(0.85, 1.0)), rng)


def _summarise(
    cond: Condition, pos: np.ndarray, neg: np.ndarray, threshold: float, fprs: Sequence[float]
) -> dict[str, object]:
    row: dict[str, object] = {
        "edit": cond.edit,
        "strength": cond.strength,
        "label": cond.label,
        "n_stamped": int(pos.size),
        "n_clean": int(neg.size),
        "tpr_at_calibrated": rate_above(pos, threshold),
        "fpr_at_calibrated": rate_above(neg, threshold),
        "roc_auc": roc_auc(pos, neg),
        "paper_accuracy": paper_accuracy(pos, neg, 0.0),
    }
    for f in fprs:
        # an FPR below 1/n cannot be resolved by n clean samples: say so instead of a number
        row[f"tpr_at_fpr_{f:g}"] = tpr_at_fpr(pos, neg, f) if f * neg.size >= 1 else None
    return row


def imperceptibility(
    clean: np.ndarray,
    stamped: np.ndarray,
    settings: EvalSettings,
    butteraugli_path: str | None,
    lp: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> dict[str, float]:
    """The per-photo columns: PSNR / SSIM / MS-SSIM (and LPIPS) of the stamped photo, then the
    perceptual metrics of the stamped photo and of the JPEG references (with their PSNR and
    SSIM), and the seconds the perceptual metrics took."""
    row = {"psnr": psnr_uint8(stamped, clean), "ssim": ssim(stamped, clean), "ms_ssim": ms_ssim(stamped, clean)}
    if lp is not None:
        row["lpips"] = lp(stamped, clean)
    if settings.perceptual:
        t0 = time.perf_counter()
        refs = {f"jpeg{q}": jpeg_copy(clean, q) for q in settings.jpeg_references}
        row.update(perceptual(clean, {"": stamped, **refs}, butteraugli_path))
        for name, ref in refs.items():
            row[column("psnr", name)] = psnr_uint8(ref, clean)
            row[column("ssim", name)] = ssim(ref, clean)
        row["perceptual_s"] = time.perf_counter() - t0
    return row


def _strength(cond: Condition) -> str:
    """A condition's strength as ``samples.csv`` writes it ("" for none)."""
    return "" if cond.strength is None else str(cond.strength)


def _eval_photo(
    stamper: Stamper,
    f: Path,
    pi: int,
    conds: list[Condition],
    settings: EvalSettings,
    lp: Any = None,
    butteraugli_path: str | None = None,
    others: Sequence[Path] = (),
) -> tuple[dict[str, Any], _Samples]:
    """Stamp one photo, measure it, and scan every condition x variant of its stamped and clean
    copies; scene edits (pastes, grids) put it among ``others`` (the set's other photos)."""
    pic = read_image(f, max_pixels=stamper.max_pixels)
    stamped = stamper.protect(pic)
    row = {
        "photo": f.name,
        "width": pic.size[0],
        "height": pic.size[1],
        **imperceptibility(pic.rgb, stamped.rgb, settings, butteraugli_path, lp),
    }
    # the public scoring path: the model makes its own working copies of the edited pictures
    measured = measure(
        stamper.copies.score_pictures,
        stamped,
        pic,
        grid_edits(conds, files_scenery(others)),
        settings.variants,
        seed=lambda ci, v: sample_seed(settings.seed, pi, ci, v),
        view=view_variant,
    )
    by_label = {c.label: c for c in conds}
    samples = [
        (f.name, by_label[s.edit].edit, _strength(by_label[s.edit]), s.variant, s.kind, s.score) for s in measured
    ]
    return row, samples


_WORKER: dict[str, Stamper] = {}
"""Per-worker-process cache of the stamper (filled by the pool initializer)."""


def _worker_init(model: str, max_pixels: int | None) -> None:
    import torch

    from deepraft.runtime.stamper import load

    torch.set_num_threads(1)
    _WORKER["stamper"] = load(model, device="cpu", max_pixels=max_pixels)


def _worker_photo(
    args: tuple[Path, int, list[Condition], EvalSettings, str | None, list[Path]],
) -> tuple[dict[str, Any], _Samples] | ImageError:
    f, pi, conds, settings, butteraugli_path, others = args
    try:
        return _eval_photo(_WORKER["stamper"], f, pi, conds, settings, butteraugli_path=butteraugli_path, others=others)
    except ImageError as exc:
        return exc


def _perceptual_note(settings: EvalSettings) -> tuple[str | None, str]:
    """(the butteraugli command or None, a sentence for the summary)."""
    if not settings.perceptual:
        return None, "Perceptual metrics (SSIMULACRA 2, Butteraugli) skipped by the settings."
    return perceptual_setup(settings.jpeg_references)


def eval_workers(workers: int, lpips_on: bool, device_type: str) -> int:
    """The worker processes ``run_eval`` can use: ``workers`` on CPU without LPIPS, else 0,
    with a warning saying why (the photos are then evaluated in this process)."""
    if workers <= 0:
        return 0
    why = (
        "LPIPS is computed (its network is not shared with worker processes)"
        if lpips_on
        else f"the model runs on {device_type}, not the CPU"
        if device_type != "cpu"
        else None
    )
    if why is None:
        return workers
    warnings.warn(f"eval: --workers {workers} ignored: {why}; evaluating in this process", stacklevel=2)
    return 0


def _eval_all(
    stamper: Stamper,
    files: list[Path],
    conds: list[Condition],
    settings: EvalSettings,
    lp: Any,
    butteraugli_path: str | None,
    progress: Callable[[Iterable], Iterable] | None,
    workers: int,
) -> tuple[list[dict[str, Any]], _Samples, list[str]]:
    """(image rows, samples, failures) of every photo, in this process or in ``workers``."""
    images: list[dict[str, Any]] = []
    samples: _Samples = []
    failed: list[str] = []

    def collect(outs: Iterable[Any]) -> None:
        for out in outs:
            if isinstance(out, ImageError):
                failed.append(str(out))
            else:
                images.append(out[0])
                samples.extend(out[1])

    if eval_workers(workers, lp is not None, stamper.device.type) > 0:
        from concurrent.futures import ProcessPoolExecutor

        card = stamper.card
        card_path = str(
            card.path if card.path is not None and (card.path / "card.json").exists() else card.weights_path
        )
        with ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(card_path, stamper.max_pixels)) as pool:
            jobs = pool.map(
                _worker_photo,
                [(f, pi, conds, settings, butteraugli_path, others_of(files, f)) for pi, f in enumerate(files)],
            )
            # consumed inside the pool's block: leaving it first waits for every photo, and the
            # progress lines then all came at the end
            collect(progress(jobs) if progress else jobs)
    else:
        collect(
            _try_photo(stamper, f, pi, conds, settings, lp, butteraugli_path, others_of(files, f))
            for pi, f in enumerate(progress(files) if progress else files)
        )
    return images, samples, failed


def _try_photo(
    stamper: Stamper,
    f: Path,
    pi: int,
    conds: list[Condition],
    settings: EvalSettings,
    lp: Any,
    butteraugli_path: str | None,
    others: list[Path],
) -> tuple[dict[str, Any], _Samples] | ImageError:
    try:
        return _eval_photo(stamper, f, pi, conds, settings, lp, butteraugli_path, others)
    except ImageError as exc:
        return exc


def _write_tables(out_dir: Path, images: list[dict[str, Any]], samples: _Samples) -> None:
    """``images.csv`` and ``samples.csv``, each written atomically."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, list(dict.fromkeys(k for r in images for k in r)))
    w.writeheader()
    w.writerows(images)
    atomic_write_bytes(out_dir / "images.csv", buf.getvalue().encode())
    buf = io.StringIO(newline="")
    sw = csv.writer(buf)
    sw.writerow(["photo", "edit", "strength", "variant", "kind", "score"])
    sw.writerows(samples)
    atomic_write_bytes(out_dir / "samples.csv", buf.getvalue().encode())


def _condition_rows(
    conds: list[Condition], samples: _Samples, threshold: float, fprs: Sequence[float]
) -> list[dict[str, object]]:
    by_cond: dict[tuple[str, str], dict[str, list[float]]] = {}
    for _, edit, strength, _, kind, score in samples:
        by_cond.setdefault((edit, strength), {"stamped": [], "clean": []})[kind].append(score)
    rows = []
    for cond in conds:
        d = by_cond[(cond.edit, _strength(cond))]
        rows.append(_summarise(cond, np.array(d["stamped"]), np.array(d["clean"]), threshold, fprs))
    return rows


def _imperceptibility_summary(images: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, float] | None]:
    """(statistics of every per-photo column, the perceptual metrics' cost or None)."""
    keys = [
        k for k in dict.fromkeys(k for r in images for k in r) if k not in ("photo", "width", "height", "perceptual_s")
    ]
    imp = {k: st for k in keys if (st := column_stats(images, k))}
    timed = [r for r in images if "perceptual_s" in r]
    cost = (
        {
            "seconds_per_photo": float(np.mean([r["perceptual_s"] for r in timed])),
            "seconds_per_megapixel": sum(r["perceptual_s"] for r in timed)
            / sum(r["width"] * r["height"] / 1e6 for r in timed),
        }
        if timed
        else None
    )
    return imp, cost


def _lpips() -> tuple[Any, str]:
    try:
        return lpips_metric(), "LPIPS (AlexNet) computed"
    except LpipsUnavailable as exc:
        return None, str(exc)


def run_eval(
    stamper: Stamper,
    files: Sequence[Path],
    out_dir: Path,
    settings: EvalSettings,
    progress: Callable[[Iterable], Iterable] | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """Run the evaluation; write ``images.csv``, ``samples.csv`` and ``summary.json`` under
    ``out_dir`` and return the summary. ``workers`` > 0 spreads the photos over processes
    (CPU only, without LPIPS, else a warning and this process; each loads the model from
    ``stamper.card``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    conds = conditions(settings.grid)
    files = list(files)[: settings.max_photos] if settings.max_photos else list(files)
    threshold = stamper.card.threshold()
    lp, lpips_note = _lpips()
    butteraugli_path, perceptual_note = _perceptual_note(settings)
    images, samples, failed = _eval_all(stamper, files, conds, settings, lp, butteraugli_path, progress, workers)
    if not images:
        raise ValueError("eval: no readable photos")
    _write_tables(out_dir, images, samples)
    rows = _condition_rows(conds, samples, threshold, settings.fprs)
    imp, cost = _imperceptibility_summary(images)
    by_name = {Path(f).name: Path(f) for f in files}
    rank = "ssimulacra2" if "ssimulacra2" in imp else "ssim"
    worst = sorted(images, key=lambda r: r[rank])[: settings.before_after]
    shown = [
        write_before_after(stamper, by_name[r["photo"]], out_dir, f"before_after_{i}.png", note={rank: r[rank]})
        for i, r in enumerate(worst, 1)
    ]
    summary = {
        "model": stamper.card.name,
        "threshold": threshold,
        "calibrated_fpr": stamper.card.default_fpr,
        "n_photos": len(images),
        "variants_per_condition": settings.variants,
        "seed": settings.seed,
        "failed": failed,
        "lpips_note": lpips_note,
        "perceptual_note": perceptual_note,
        "perceptual_cost": cost,
        "jpeg_references": list(settings.jpeg_references) if settings.perceptual else [],
        "imperceptibility": imp,
        "conditions": rows,
        "before_after": shown,
        "before_after_rank": rank,
        "method": METHOD,
    }
    atomic_write_bytes(out_dir / "summary.json", (json.dumps(summary, indent=2, default=_json_default) + "\n").encode())
    return summary


def flattest_box(rgb: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The ``size`` x ``size`` window (stride size/2) whose luminance varies least: where a
    stamp would show first (sky, walls, skin)."""
    h, w = rgb.shape[:2]
    size = min(size, h, w)
    y = luma(rgb)
    step = max(1, size // 2)
    best, box = np.inf, (0, 0, size, size)
    for top in range(0, h - size + 1, step):
        for left in range(0, w - size + 1, step):
            v = float(y[top : top + size, left : left + size].std())
            if v < best:
                best, box = v, (left, top, left + size, top + size)
    return box


def before_after_strip(
    clean: np.ndarray, stamped: np.ndarray, box: tuple[int, int, int, int], gain: float = 10.0
) -> np.ndarray:
    """The ``box`` (left, top, right, bottom) of both photos side by side at 100 %: clean |
    stamped | the difference amplified ``gain`` times around mid-grey, 8 white pixels apart."""
    left, top, right, bottom = box
    a = clean[top:bottom, left:right, :3].astype(np.float32)
    b = stamped[top:bottom, left:right, :3].astype(np.float32)
    diff = np.clip(np.rint(128.0 + gain * (b - a)), 0, 255)
    gap = np.full((a.shape[0], 8, 3), 255, dtype=np.uint8)
    return np.concatenate([a.astype(np.uint8), gap, b.astype(np.uint8), gap, diff.astype(np.uint8)], axis=1)


def write_before_after(
    stamper: Stamper,
    file: Path,
    out_dir: Path,
    name: str = "before_after.png",
    size: int = 256,
    gain: float = 10.0,
    note: dict[str, object] | None = None,
) -> dict[str, object]:
    """``name``: the flattest ``size`` px window of ``file`` (chosen by flatness alone, where a
    stamp shows first) at 100 %, as :func:`before_after_strip`."""
    pic = read_image(file, max_pixels=stamper.max_pixels)
    stamped = stamper.protect(pic)
    box = flattest_box(pic.rgb, size)
    left, top, right, bottom = box
    buf = io.BytesIO()
    Image.fromarray(before_after_strip(pic.rgb, stamped.rgb, box, gain)).save(buf, format="PNG")
    atomic_write_bytes(out_dir / name, buf.getvalue())
    return {
        "file": name,
        "photo": Path(file).name,
        "box": list(box),
        "gain": gain,
        **(note or {}),
        "psnr_window": psnr_uint8(stamped.rgb[top:bottom, left:right], pic.rgb[top:bottom, left:right]),
    }


def _json_default(o: object) -> object:
    if isinstance(o, float) and math.isnan(o):
        return None
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))
