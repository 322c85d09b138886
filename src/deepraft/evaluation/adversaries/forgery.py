"""Model-free forgeries and removals (the third meaning of "attack": an attacker's, see
:mod:`deepraft.evaluation.adversaries`), which need no access to the model, only to pictures.

An attacker who cannot query gradients can still study stamped pictures: a grating forgery, an
averaged-residual forgery and a notch removal, each beside its control, and the residual
statistics that predict them. The method, as recorded in ``forgery.json``, is :data:`METHOD`.

Everything here is a pure function of numpy arrays (H,W,3 RGB in 0..255, H,W planes for one
channel); :func:`run_forgery` is the thin loop that stamps and scans through the public API
(``stamper.protect_batch``, ``stamper.scan_batch``) and writes ``forgery.json`` and ``forgery.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft as sfft
from PIL import Image, ImageOps
from scipy.ndimage import gaussian_filter

from deepraft.core.measures import luma, psnr  # the package's one luma and one PSNR

METHOD = (
    "An attacker who cannot query gradients can still study stamped pictures. If the stamp is nearly the "
    "same pattern in every picture (a grating, or any fixed texture), three cheap attacks work: "
    "grating forgery: add a sinusoidal grating (a guess at the stamp's frequency) to a clean photo at a high "
    "PSNR; if the scanner keys on that frequency it flags the clean photo. Averaged-residual forgery: "
    "estimate the stamp as the average, over N stamped photos, of each photo minus its denoised copy "
    "(natural content averages out, a fixed stamp adds up), and add that average to clean photos. Notch "
    "removal: zero the FFT bins of that estimate that stand out most from their ring (power over the "
    "median power at the same distance from DC), and their neighbours, in a stamped photo. Controls beside "
    "each: white noise at the same PSNR, the averaged residual of the same photos unstamped, a notch at "
    "random bins of the same radii, and the average of the true stamps (the defender's oracle: what a "
    "perfect estimate would forge). The statistics that predict these attacks are measured too: the share "
    "of a residual's power in its strongest FFT bins (a pure grating: 1; white noise: about k / pixels) and "
    "the cosine between residuals of different photos (a fixed pattern: 1; independent noise: 0). "
    "Frequencies are in cycles per picture, written AxB: A cycles down the picture's height, B across its "
    "width (numpy's (rows, columns) order); a negative B turns the grating the other way. Since a stamp is "
    "upsampled from the scanner's working copy to the whole picture, its frequencies are fixed in cycles "
    "per picture whatever the photo's resolution."
)
"""How the model-free attacks work (the ``method`` of ``forgery.json``; a constant, not the module
docstring, which ``python -OO`` strips)."""

GRATING_SET: tuple[tuple[int, int], ...] = (
    (0, 16),
    (16, 0),
    (8, 12),
    (12, -8),
    (16, 16),
    (16, 24),
    (24, -16),
    (32, 32),
    (32, -48),
    (64, 64),
)
"""Frequencies (cycles per picture, rows x columns) an attacker tries when he does not know
the stamp's: axis-aligned and diagonal both ways, 8 to 90 cycles."""


# -- measures ------------------------------------------------------------------------------


def scale_to_psnr(delta: np.ndarray, psnr_db: float, peak: float = 255.0) -> np.ndarray:
    """``delta`` scaled so that adding it to any picture (without clipping or rounding) gives
    exactly ``psnr_db``."""
    rms = float(np.sqrt(np.mean(np.asarray(delta, dtype=np.float64) ** 2)))
    if rms == 0:
        raise ValueError("cannot scale an all-zero perturbation to a PSNR")
    return delta * (peak / 10 ** (psnr_db / 20) / rms)


def add_at_psnr(
    rgb: np.ndarray, delta: np.ndarray, psnr_db: float, tol_db: float = 0.02, max_iter: int = 40
) -> tuple[np.ndarray, float]:
    """``rgb`` (uint8) plus ``delta`` (broadcast to it) scaled so that the 8-bit result, after
    clipping and rounding, has a PSNR against ``rgb`` of at least ``psnr_db``, as close to it as
    rounding allows (within ``tol_db`` unless the rounded result jumps over that window):
    clipping removes part of the perturbation and rounding adds some, so the scale found for the
    float sum is corrected by secant steps, then bisection. Returns (uint8, PSNR)."""
    base = np.asarray(rgb, dtype=np.float32)
    d = np.broadcast_to(np.asarray(delta, dtype=np.float32), base.shape)
    rms = float(np.sqrt(np.mean(d.astype(np.float64) ** 2)))
    if rms == 0:
        raise ValueError("cannot scale an all-zero perturbation to a PSNR")

    def at(k: float) -> tuple[np.ndarray, float]:
        out = np.clip(np.rint(base + k * d), 0, 255).astype(np.uint8)
        return out, psnr(out, rgb)

    k = 255.0 / 10 ** (psnr_db / 20) / rms
    lo: tuple[float, np.ndarray, float] | None = None  # the largest scale found that keeps the PSNR
    hi: float | None = None  # the smallest scale found that does not
    for i in range(max_iter):
        out, p = at(k)
        if p >= psnr_db:
            if lo is None or k > lo[0]:
                lo = (k, out, p)
            if p < psnr_db + tol_db:
                break
        else:
            hi = k if hi is None else min(hi, k)
        if lo is not None and hi is not None:
            if hi / lo[0] - 1 < 1e-5:
                break
            k = (lo[0] + hi) / 2 if i >= 4 else min(max(k * 10 ** ((p - psnr_db) / 20), lo[0]), hi)
            if not lo[0] < k < hi:
                k = (lo[0] + hi) / 2
        elif not math.isfinite(p):
            k *= 2.0
        else:  # a secant step a little past the target, so that the next one brackets it
            k *= 10 ** ((p - psnr_db) / 20) * (0.995 if p < psnr_db else 1.005)
    if lo is None:
        raise ValueError(f"could not add the perturbation at {psnr_db} dB or more")
    return lo[1], lo[2]


def fft_power(plane: np.ndarray) -> np.ndarray:
    """|FFT|^2 of a (H,W) plane with its mean removed (no DC)."""
    x = np.asarray(plane, dtype=np.float32)
    return np.abs(sfft.fft2(x - x.mean())) ** 2


def power_share(plane: np.ndarray, k: int = 20) -> float:
    """Share of the plane's (mean-removed) power in its ``k`` strongest FFT bins (a real
    sinusoid of whole cycles takes 2 bins: share 1.0 for k >= 2)."""
    return top_share(fft_power(plane), k)


def top_share(power: np.ndarray, k: int = 20) -> float:
    """Share of a power spectrum's total in its ``k`` strongest bins (0 for no power)."""
    p = np.asarray(power).ravel()
    total = float(p.sum(dtype=np.float64))
    if total == 0:
        return 0.0
    return float(np.partition(p, p.size - k)[-k:].sum(dtype=np.float64) / total)


def signed_freqs(n: int) -> np.ndarray:
    """FFT bin index -> signed frequency (cycles per picture) for an axis of ``n`` samples."""
    return np.round(np.fft.fftfreq(n) * n).astype(int)


def ring_whiten(power: np.ndarray) -> np.ndarray:
    """Each FFT bin's power over the median power of its ring (the bins at the same distance from
    DC, rounded): how far it stands out from what the picture has at that frequency anyway."""
    fy, fx = signed_freqs(power.shape[0])[:, None], signed_freqs(power.shape[1])[None, :]
    ring = np.rint(np.hypot(fy, fx)).astype(int)
    med = np.zeros(ring.max() + 1)
    order = np.argsort(ring, axis=None)
    r_sorted, p_sorted = ring.ravel()[order], power.ravel()[order]
    starts = np.searchsorted(r_sorted, np.arange(ring.max() + 2))
    for r in range(ring.max() + 1):
        if starts[r + 1] > starts[r]:
            med[r] = np.median(p_sorted[starts[r] : starts[r + 1]])
    return power / (med[ring] + 1e-12 * float(power.max()) + 1e-30)


def top_bins(plane: np.ndarray, k: int, min_cycles: float = 2.0, whiten: bool = True) -> list[tuple[int, int]]:
    """The ``k`` strongest frequencies (rows x columns, cycles per picture) of a plane, one
    of each conjugate pair (A > 0, or A == 0 and B > 0), strongest first; frequencies under
    ``min_cycles`` are left out. ``whiten``: rank by power over the median of the bin's ring
    (:func:`ring_whiten`: peaks, not the 1/f slope of picture content that leaks into any
    residual); otherwise by raw power."""
    p = fft_power(plane)
    score = ring_whiten(p) if whiten else p
    fy, fx = signed_freqs(p.shape[0])[:, None], signed_freqs(p.shape[1])[None, :]
    keep = ((fy > 0) | ((fy == 0) & (fx > 0))) & (np.hypot(fy, fx) >= min_cycles)
    order = np.argsort(np.where(keep, score, -1.0), axis=None)[::-1][: int(k)]
    rows, cols = np.unravel_index(order, p.shape)
    return [(int(fy[r, 0]), int(fx[0, c])) for r, c in zip(rows, cols) if keep[r, c]]


def cosine_matrix(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Cosines between every pair of (flattened) vectors."""
    m = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in vectors])
    n = np.linalg.norm(m, axis=1, keepdims=True)
    m = m / np.where(n == 0, 1.0, n)
    return m @ m.T


def residual_cosines(planes: Sequence[np.ndarray]) -> dict[str, float]:
    """How much residuals of different photos share one pattern: the mean cosine over pairs
    of photos, and the cosine of each with the mean of the others (mean, min, max)."""
    if len(planes) < 2:
        raise ValueError("residual cosines need at least two residuals")
    c = cosine_matrix(planes)
    n = len(planes)
    pairs = c[np.triu_indices(n, 1)]
    total = np.sum([np.asarray(p, dtype=np.float64) for p in planes], axis=0)
    loo = np.array([cosine_matrix([p, (total - p) / (n - 1)])[0, 1] for p in planes])
    return {
        "mean_pairwise_cosine": float(pairs.mean()),
        "loo_cosine_mean": float(loo.mean()),
        "loo_cosine_min": float(loo.min()),
        "loo_cosine_max": float(loo.max()),
    }


# -- patterns --------------------------------------------------------------------------------


def parse_cycles(text: str) -> tuple[int, int]:
    """``"16x24"`` -> (16, 24); ``"16x-24"`` -> (16, -24)."""
    try:
        a, b = text.lower().split("x")
        return int(a), int(b)
    except ValueError as exc:
        raise ValueError(f"a grating is AxB cycles per picture (e.g. 16x24), not {text!r}") from exc


def grating(h: int, w: int, cycles: tuple[int, int], phase: float = 0.0) -> np.ndarray:
    """cos(2 pi (A y / h + B x / w) + phase) on an (h, w) grid: A cycles down the picture, B
    across it; values in [-1, 1], float32."""
    fy, fx = cycles
    y = np.arange(h, dtype=np.float64)[:, None] / h
    x = np.arange(w, dtype=np.float64)[None, :] / w
    return np.cos(2 * np.pi * (fy * y + fx * x) + phase).astype(np.float32)


def notch(rgb: np.ndarray, bins: Iterable[tuple[int, int]], radius: int = 1) -> np.ndarray:
    """Zero the frequencies ``bins`` (cycles per picture), their conjugates and the bins within
    ``radius`` of them in every channel's 2-D FFT; returns float32 pixels (not clipped)."""
    arr = np.asarray(rgb, dtype=np.float32)
    h, w = arr.shape[:2]
    mask = np.ones((h, w), dtype=bool)
    for fy, fx in bins:
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                a, b = fy + dy, fx + dx
                if abs(a) <= h // 2 and abs(b) <= w // 2:
                    mask[a % h, b % w] = False
                    mask[-a % h, -b % w] = False
    out = np.empty_like(arr)
    for c in range(arr.shape[2]):
        out[..., c] = sfft.ifft2(sfft.fft2(arr[..., c]) * mask).real
    return out


# -- residuals -------------------------------------------------------------------------------


def gaussian_denoise(rgb: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """A Gaussian blur of ``sigma`` pixels per channel (float32)."""
    return gaussian_filter(np.asarray(rgb, dtype=np.float32), sigma=(sigma, sigma, 0))


class DenoiserUnavailable(RuntimeError):
    pass


def nlm_denoise(rgb: np.ndarray, h: float = 3.0, template: int = 7, search: int = 21) -> np.ndarray:
    """Non-local means (OpenCV's ``fastNlMeansDenoisingColored``, its default strength)."""
    try:
        import cv2
    except ImportError as exc:  # opencv comes with the test and bench extras (invisible-watermark)
        raise DenoiserUnavailable("the NLM denoiser needs OpenCV (pip install opencv-python-headless)") from exc
    bgr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[..., ::-1])
    return cv2.fastNlMeansDenoisingColored(bgr, None, h, h, template, search)[..., ::-1].astype(np.float32)


DENOISERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"gaussian": gaussian_denoise, "nlm": nlm_denoise}


def noise_residual(rgb: np.ndarray, denoiser: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The picture minus its denoised copy: the fine texture, stamp included (float32)."""
    return np.asarray(rgb, dtype=np.float32) - denoiser(rgb)


def resize_planes(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H,W) or (H,W,C) array to ``size`` = (h, w), antialiased bicubic per
    channel (PIL 'F' mode: no rounding)."""
    h, w = size
    if x.ndim == 2:
        return np.asarray(Image.fromarray(np.asarray(x, dtype=np.float32)).resize((w, h), Image.Resampling.BICUBIC))
    return np.stack([resize_planes(x[..., c], size) for c in range(x.shape[2])], axis=-1)


def average_residual(residuals: Iterable[np.ndarray], size: int) -> np.ndarray:
    """The mean of residuals (of photos of any size), each squashed to ``size`` x ``size``."""
    total, n = None, 0
    for r in residuals:
        r = resize_planes(r, (size, size))
        total = r.astype(np.float64) if total is None else total + r
        n += 1
    if total is None:
        raise ValueError("no residuals to average")
    return (total / n).astype(np.float32)


# -- the runner ------------------------------------------------------------------------------


@dataclass
class ForgerySettings:
    gratings: tuple[tuple[int, int], ...] = ((16, 24),)
    """Gratings measured one by one (besides one drawn from ``grating_set`` per photo)."""
    grating_set: tuple[tuple[int, int], ...] = GRATING_SET
    psnrs: tuple[float, ...] = (40.0, 44.8)
    n_donors: int = 19
    """Stamped photos whose residuals are averaged (taken from the start of the photo list)."""
    denoisers: tuple[str, ...] = ("gaussian", "nlm")
    residual_at: tuple[str, ...] = ("full", "common")
    """Where residuals are taken: at the photo's full resolution, and/or after squashing it to
    ``common_size`` (where a stamp upsampled from a small working copy has fine texture)."""
    common_size: int = 256
    notch_bins: tuple[int, ...] = (10, 20, 50)
    notch_radius: int = 1
    notch_min_cycles: float = 8.0
    """The notch leaves frequencies under this alone: they carry the picture itself, and
    zeroing them costs more PSNR than a stamp is worth."""
    top_k: int = 20
    max_targets: int | None = 20
    """Held-out photos the forgeries are added to (and the notch applied to, stamped)."""
    seed: int = 0

    @classmethod
    def quick(cls) -> ForgerySettings:
        return cls(
            psnrs=(40.0,), n_donors=6, denoisers=("gaussian",), residual_at=("common",), notch_bins=(20,), max_targets=4
        )


def _read(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def _rate(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else float("nan")


def _row(attack: str, goal: str, results, measured: Sequence[float] | None = None, **params) -> dict:
    flags = [r.protected for r in results]
    row = {
        "attack": attack,
        "goal": goal,
        **params,
        "n": len(flags),
        "flagged": int(sum(flags)),
        "rate": _rate(flags),
        "mean_score": float(np.mean([r.score for r in results])),
    }
    if measured is not None:
        row["mean_psnr"], row["min_psnr"] = float(np.mean(measured)), float(np.min(measured))
    return row


def _fmt_cycles(c: tuple[int, int]) -> str:
    return f"{c[0]}x{c[1]}"


def random_bins_like(rng: np.random.Generator, bins: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """For each frequency, another at the same distance from DC in a random direction (none of
    ``bins``, no two alike): a notch there costs the picture about as much, but misses the stamp."""
    taken = set(bins)
    out: list[tuple[int, int]] = []
    for fy, fx in bins:
        r = math.hypot(fy, fx)
        for _ in range(1000):
            t = float(rng.uniform(0, math.pi))
            b = (round(r * math.sin(t)), round(r * math.cos(t)))
            if b[0] < 0 or (b[0] == 0 and b[1] <= 0):
                b = (-b[0], -b[1])
            if b != (0, 0) and b not in taken:
                break
        taken.add(b)
        out.append(b)
    return out


def _read_all(paths: Iterable[Path], failed: list[str]) -> list[tuple[str, Image.Image]]:
    """(name, RGB image) of every readable path; the others are reported in ``failed``."""
    got = []
    for p in paths:
        try:
            got.append((Path(p).name, _read(p)))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            failed.append(f"{p}: {exc}")
    return got


def _split_photos(
    files: Sequence[Path], donor_files: Sequence[Path] | None, settings: ForgerySettings, failed: list[str]
) -> tuple[list[tuple[str, Image.Image]], list[tuple[str, Image.Image]]]:
    """(donors, held-out targets): the first ``n_donors`` photos of ``files`` (or of
    ``donor_files``) and the rest (at most ``max_targets``)."""
    if donor_files is None:
        photos = _read_all(files, failed)
        donors, targets = photos[: settings.n_donors], photos[settings.n_donors :]
    else:
        donors = _read_all(donor_files, failed)[: settings.n_donors]
        used = {Path(p).resolve() for p in donor_files}
        targets = _read_all((f for f in files if Path(f).resolve() not in used), failed)
    targets = targets[: settings.max_targets] if settings.max_targets else targets
    if len(donors) < 2 or not targets:
        raise ValueError(
            f"forgery: need at least 2 donor photos and 1 held-out photo (got {len(donors)} donors, "
            f"{len(targets)} held out); give more photos or fewer --donors"
        )
    return donors, targets


@dataclass
class _Scene:
    """The stamped and clean donors and held-out photos, and the scanner that judges them."""

    stamper: Any
    clean_d: list[Image.Image]
    stamped_d: list[Image.Image]
    clean_t: list[Image.Image]
    stamped_t: list[Image.Image]

    @property
    def arr_t(self) -> list[np.ndarray]:
        return [np.asarray(im) for im in self.clean_t]

    @property
    def arr_st(self) -> list[np.ndarray]:
        return [np.asarray(im) for im in self.stamped_t]

    def forged_row(self, attack: str, patterns: Sequence[np.ndarray], psnr_db: float, **params: Any) -> dict:
        """Add each pattern to its held-out clean photo at ``psnr_db`` and scan the forgeries."""
        forged, ps = [], []
        for a, pat in zip(self.arr_t, patterns):
            out, p = add_at_psnr(a, pat, psnr_db)
            forged.append(Image.fromarray(out))
            ps.append(p)
        return _row(attack, "forging", self.stamper.scan_batch(forged), ps, psnr_target=psnr_db, **params)


def _grating_like(a: np.ndarray, cycles: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A grating the size of picture ``a`` at a random phase, (H,W,1)."""
    h, w = a.shape[:2]
    return grating(h, w, cycles, float(rng.uniform(0, 2 * np.pi)))[..., None]


def _grating_rows(scene: _Scene, settings: ForgerySettings, rng: np.random.Generator) -> list[dict]:
    """Grating forgeries: each given and each set frequency, one drawn from the set per photo,
    and white noise at the same PSNR (the control)."""
    rows = []
    arr_t = scene.arr_t
    for psnr_db in settings.psnrs:
        for cycles in list(settings.gratings) + [c for c in settings.grating_set if c not in settings.gratings]:
            pats = [_grating_like(a, cycles, rng) for a in arr_t]
            chosen = "given" if cycles in settings.gratings else "set"
            rows.append(scene.forged_row("grating", pats, psnr_db, cycles=_fmt_cycles(cycles), chosen=chosen))
        drawn = [settings.grating_set[int(rng.integers(0, len(settings.grating_set)))] for _ in arr_t]
        pats = [_grating_like(a, c, rng) for a, c in zip(arr_t, drawn)]
        rows.append(scene.forged_row("grating", pats, psnr_db, cycles="random from the set", chosen="random"))
        pats = [rng.normal(size=a.shape).astype(np.float32) for a in arr_t]
        rows.append(scene.forged_row("white noise (control)", pats, psnr_db))
    return rows


@dataclass
class _Residuals:
    """Residuals squashed to the common size, by kind ('stamp', 'gaussian@full', ...) and group
    ('stamped', 'clean'), with their power shares; ``denoisers``: the kinds that could be made."""

    planes: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    shares: dict[str, list[float]] = field(default_factory=dict)
    denoisers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def keep(self, kind: str, group: str, r: np.ndarray, size: int, top_k: int) -> None:
        self.planes.setdefault(kind, {}).setdefault(group, []).append(resize_planes(r, (size, size)))
        self.shares.setdefault(f"{kind}:{group}", []).append(power_share(luma(r), top_k))

    def drop(self, kind: str) -> None:
        self.planes.pop(kind, None)
        self.shares.pop(f"{kind}:stamped", None)
        self.shares.pop(f"{kind}:clean", None)


def _residuals(scene: _Scene, settings: ForgerySettings) -> _Residuals:
    """The true stamps of every photo, and each denoiser's residuals of the donors (stamped and
    clean), at full resolution and/or at the common size."""
    size, top_k = settings.common_size, settings.top_k
    res = _Residuals()
    for c_img, s_img in zip(scene.clean_d + scene.clean_t, scene.stamped_d + scene.stamped_t):
        res.keep("stamp", "stamped", np.asarray(s_img, np.float32) - np.asarray(c_img, np.float32), size, top_k)
    for name in settings.denoisers:
        fn = DENOISERS[name]
        for at in settings.residual_at:
            kind = f"{name}@{'full' if at == 'full' else size}"
            try:
                for c_img, s_img in zip(scene.clean_d, scene.stamped_d):
                    for group, img in (("stamped", s_img), ("clean", c_img)):
                        x = np.asarray(img, np.float32)
                        r = noise_residual(x if at == "full" else resize_planes(x, (size, size)), fn)
                        res.keep(kind, group, r, size, top_k)
                res.denoisers.append(kind)
            except DenoiserUnavailable as exc:
                res.drop(kind)
                res.notes.append(f"{kind} residuals skipped: {exc}")
    return res


def _averaged_rows(
    scene: _Scene, res: _Residuals, settings: ForgerySettings, rng: np.random.Generator
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Averaged-residual forgeries beside the clean-residual control, the averaged true stamp
    (the oracle) and a grating at each estimate's strongest frequency; returns (rows, estimates)."""
    rows, estimates = [], {}
    n_d, arr_t = len(scene.clean_d), scene.arr_t
    for name in res.denoisers:
        estimates[name] = np.mean(res.planes[name]["stamped"], axis=0)
        control = np.mean(res.planes[name]["clean"], axis=0)
        for psnr_db in settings.psnrs:
            for label, avg in (
                (f"averaged residual ({name})", estimates[name]),
                (f"averaged residual of clean photos ({name}, control)", control),
            ):
                pats = [resize_planes(avg, a.shape[:2]) for a in arr_t]
                rows.append(scene.forged_row(label, pats, psnr_db, n_donors=n_d))
    oracle = np.mean(res.planes["stamp"]["stamped"][:n_d], axis=0)
    for psnr_db in settings.psnrs:
        pats = [resize_planes(oracle, a.shape[:2]) for a in arr_t]
        rows.append(scene.forged_row("averaged true stamp (oracle)", pats, psnr_db, n_donors=n_d))
    for name in res.denoisers:  # the grating at the estimate's strongest frequency
        peak = top_bins(luma(estimates[name]), 1)[0]
        for psnr_db in settings.psnrs:
            pats = [_grating_like(a, peak, rng) for a in arr_t]
            label = f"grating at the estimate's peak ({name})"
            rows.append(scene.forged_row(label, pats, psnr_db, cycles=_fmt_cycles(peak)))
    return rows, estimates


def _notch_rows(
    scene: _Scene, estimates: dict[str, np.ndarray], settings: ForgerySettings, rng: np.random.Generator
) -> tuple[list[dict], dict[str, list[str]]]:
    """Notch removal at each estimate's strongest bins beside a notch at random bins of the same
    radii; returns (rows, the estimated bins by denoiser)."""
    rows, estimated_bins = [], {}
    arr_st, arr_t = scene.arr_st, scene.arr_t
    for name, estimate in estimates.items():
        ranked = top_bins(luma(estimate), max(settings.notch_bins), settings.notch_min_cycles)
        estimated_bins[name] = [_fmt_cycles(b) for b in ranked]
        for k in settings.notch_bins:
            bins = ranked[:k]
            ctrl = random_bins_like(rng, bins)
            for label, bb in ((f"notch ({name})", bins), (f"notch at random bins ({name}, control)", ctrl)):
                notched, p_st, p_cl = [], [], []
                for a_s, a_c in zip(arr_st, arr_t):
                    out = np.clip(np.rint(notch(a_s, bb, settings.notch_radius)), 0, 255).astype(np.uint8)
                    notched.append(Image.fromarray(out))
                    p_st.append(psnr(out, a_s))
                    p_cl.append(psnr(out, a_c))
                scans = scene.stamper.scan_batch(notched)
                rows.append(
                    _row(
                        label,
                        "removal",
                        scans,
                        p_st,
                        bins=len(bb),
                        radius=settings.notch_radius,
                        mean_psnr_vs_clean=float(np.mean(p_cl)),
                    )
                )
    return rows, estimated_bins


def _residual_stats(res: _Residuals, top_k: int) -> dict[str, dict[str, Any]]:
    """Power shares and cosines of each kind and group of residuals."""
    stats = {}
    for kind, groups in res.planes.items():
        for group, planes in groups.items():
            key = f"{kind}:{group}"
            sh = np.array(res.shares[key])
            stats[key] = {
                "n": len(planes),
                "top_k": top_k,
                "power_share_mean": float(sh.mean()),
                "power_share_min": float(sh.min()),
                "power_share_max": float(sh.max()),
                **residual_cosines([luma(p) for p in planes]),
            }
    return stats


def run_forgery(
    stamper: Any,
    files: Sequence[Path],
    out_dir: Path,
    settings: ForgerySettings,
    donor_files: Sequence[Path] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Measure the three model-free attacks and the residual statistics for ``stamper``.

    The first ``n_donors`` readable photos of ``files`` (or ``donor_files``) are stamped and give
    the residuals; the others (at most ``max_targets``) are the held-out photos the forgeries are
    added to, and whose stamped copies are notched. Writes ``forgery.json`` and ``forgery.md``;
    ``log`` hears the name of each stage as it starts.
    """
    from deepraft.core.fileio import atomic_write_bytes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    step = log if log is not None else (lambda _: None)
    failed: list[str] = []
    donors, targets = _split_photos(files, donor_files, settings, failed)
    step(f"stamping {len(donors)} donor and {len(targets)} held-out photos")
    clean_d, clean_t = [im for _, im in donors], [im for _, im in targets]
    scene = _Scene(stamper, clean_d, stamper.protect_batch(clean_d), clean_t, stamper.protect_batch(clean_t))
    step("scanning the unattacked photos")
    rows = [
        _row("none", "forging", stamper.scan_batch(clean_t)),
        _row("none", "removal", stamper.scan_batch(scene.stamped_t)),
    ]
    step("grating forgeries")
    rng = np.random.default_rng(settings.seed)
    rows += _grating_rows(scene, settings, rng)
    step("residuals (" + ", ".join(settings.denoisers) + ")")
    res = _residuals(scene, settings)
    step("averaged-residual forgeries")
    averaged, estimates = _averaged_rows(scene, res, settings, rng)
    step("notch removal")
    notched, estimated_bins = _notch_rows(scene, estimates, settings, rng)
    step("residual statistics")
    summary = {
        "model": stamper.card.name,
        "threshold": stamper.card.threshold(),
        "n_donors": len(donors),
        "n_targets": len(targets),
        "donors": [n for n, _ in donors],
        "targets": [n for n, _ in targets],
        "failed": failed,
        "notes": res.notes,
        "settings": asdict(settings),
        "results": rows + averaged + notched,
        "estimated_bins": estimated_bins,
        "residual_stats": _residual_stats(res, settings.top_k),
        "method": METHOD,
    }
    atomic_write_bytes(out_dir / "forgery.json", (json.dumps(summary, indent=2) + "\n").encode())
    atomic_write_bytes(out_dir / "forgery.md", forgery_markdown(summary).encode())
    return summary


def _f(v: object, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def forgery_markdown(summary: dict) -> str:
    """The forgery report: one table of attacks, one of residual statistics."""
    lines = [
        f"# Model-free forgery and removal: {summary['model']}",
        "",
        (
            f"{summary['n_donors']} stamped donor photos give the residuals; {summary['n_targets']} held-out "
            f"photos receive the forgeries (clean) or the notch (stamped). Threshold {summary['threshold']:.3f} "
            "(the card's calibrated operating point). *rate*: share flagged as stamped (forging: higher is worse; "
            "removal: share still detected, lower is worse)."
        ),
        "",
        "| attack | goal | parameters | flagged | rate | PSNR (mean / min) | mean score |",
        "|---|---|---|---|---|---|---|",
    ]
    skip = {"attack", "goal", "n", "flagged", "rate", "mean_score", "mean_psnr", "min_psnr", "chosen"}
    for r in summary["results"]:
        params = ", ".join(f"{k} {_f(v, 1)}" for k, v in r.items() if k not in skip)
        ps = f"{_f(r.get('mean_psnr'), 1)} / {_f(r.get('min_psnr'), 1)}" if "mean_psnr" in r else "-"
        lines.append(
            f"| {r['attack']} | {r['goal']} | {params} | {r['flagged']}/{r['n']} | {_f(r['rate'])} | {ps} | "
            f"{_f(r['mean_score'], 2)} |"
        )
    lines += [
        "",
        "## Residual statistics",
        "",
        (
            "*stamp*: stamped minus clean photo (the defender's view); *gaussian*/*nlm*: photo minus its denoised "
            "copy (the attacker's view), of stamped and, as a baseline, clean photos. Power share: of a residual's "
            "luma power in its strongest FFT bins; cosines between luma residuals squashed to a common size."
        ),
        "",
        (
            "| residual | photos | power share in top bins (mean, min-max) | mean pairwise cosine | "
            "cosine with the mean of the others (mean, min) |"
        ),
        "|---|---|---|---|---|",
    ]
    for key, s in summary["residual_stats"].items():
        lines.append(
            f"| {key} | {s['n']} | {_f(s['power_share_mean'])} ({_f(s['power_share_min'])}-"
            f"{_f(s['power_share_max'])}), top {s['top_k']} | {_f(s['mean_pairwise_cosine'])} | "
            f"{_f(s['loo_cosine_mean'])}, {_f(s['loo_cosine_min'])} |"
        )
    for key, bins in summary["estimated_bins"].items():
        lines.append("")
        lines.append(
            f"Strongest bins of the averaged residual ({key}), whitened, from "
            f"{summary['settings']['notch_min_cycles']:g} cycles: {', '.join(bins[:20])}"
            + (" ..." if len(bins) > 20 else "")
        )
    for note in summary["notes"]:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"
