"""Imperceptibility metrics on 8-bit images: SSIM, MS-SSIM, LPIPS when possible, and the
perceptual SSIMULACRA 2 and Butteraugli (PSNR: :func:`deepraft.core.measures.psnr_uint8`)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from kornia.filters import gaussian_blur2d
from kornia.metrics import ssim as k_ssim
from PIL import Image
from torch.nn import functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / 255.0


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5) of two uint8 RGB images, channels averaged."""
    return float(k_ssim(to_tensor(a), to_tensor(b), 11).mean())


def _ssim_parts(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c1, c2 = 0.01**2, 0.03**2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return gaussian_blur2d(t, (11, 11), (1.5, 1.5), border_type="reflect")

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(), cs.mean()


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM of Wang, Simoncelli & Bovik (2003): five dyadic scales with their
    published weights (fewer scales, weights renormalised, for images under 176 px)."""
    x, y = to_tensor(a), to_tensor(b)
    scales = max(1, min(len(MS_SSIM_WEIGHTS), int(np.floor(np.log2(min(x.shape[-2:]) / 11))) + 1))
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()
    values = []
    for i in range(scales):
        s, cs = _ssim_parts(x, y)
        values.append(s if i == scales - 1 else cs)
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    v = torch.stack(values).clamp(min=1e-8)
    return float(torch.prod(v**weights))


class LpipsUnavailable(RuntimeError):
    pass


def lpips_metric() -> Callable[[np.ndarray, np.ndarray], float]:
    """An LPIPS (AlexNet) callable if the ``lpips`` package and its backbone weights are
    already on this machine; raises :class:`LpipsUnavailable` with the reason otherwise
    (deepraft never downloads weights)."""
    try:
        import lpips
    except ImportError as exc:
        raise LpipsUnavailable("LPIPS skipped: the 'lpips' package is not installed") from exc
    hub = torch.hub.get_dir()
    import glob
    import os

    if not glob.glob(os.path.join(hub, "checkpoints", "alexnet-*.pth")):
        raise LpipsUnavailable(
            f"LPIPS skipped: AlexNet backbone weights are not in {hub}/checkpoints (they cannot be downloaded here)"
        )
    net = lpips.LPIPS(net="alex", verbose=False).eval()

    def metric(a: np.ndarray, b: np.ndarray) -> float:
        with torch.no_grad():
            return float(net(to_tensor(a) * 2 - 1, to_tensor(b) * 2 - 1).mean())

    return metric


# -- perceptual metrics ------------------------------------------------------------------------
# Both compare a reference and a distorted 8-bit sRGB image of the same size, at full resolution.
# SSIMULACRA 2 (higher is better): 100 = identical, 90 ~ visually lossless, 85 ~ libjpeg 4:4:4
# quality 90, 70 ~ high quality (the reference implementation's own scale). Butteraugli max-norm
# (lower is better): below 1.0 the two images look the same, above ~1.1 a difference is visible
# (the 2017 Google release that Debian packages; its calibration differs from libjxl's newer one).

BUTTERAUGLI_TOOL = "butteraugli"
LOWER_IS_BETTER = ("butteraugli", "lpips")
"""Column prefixes whose smaller values mean 'closer to the original'."""


def _check_pair(ref: np.ndarray, dist: np.ndarray) -> None:
    if ref.shape != dist.shape or ref.ndim != 3 or ref.shape[2] != 3:
        raise ValueError(f"need two (H, W, 3) images of one size, got {ref.shape} and {dist.shape}")
    if ref.dtype != np.uint8 or dist.dtype != np.uint8:
        raise ValueError(f"need uint8 images, got {ref.dtype} and {dist.dtype}")


def _ppm(rgb: np.ndarray) -> io.BytesIO:
    """Lossless, uncompressed in-memory file (the ssimulacra2 package opens files, not arrays)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PPM")
    buf.seek(0)
    return buf


def ssimulacra2(ref: np.ndarray, dist: np.ndarray) -> float:
    """SSIMULACRA 2 score of ``dist`` against ``ref`` (uint8 RGB of one size), computed by the
    PyPI ``ssimulacra2`` package (a NumPy port of the libjxl / Cloudinary C++ tool). On photos of
    256 px and more it is within about 2 points of the C++ tool (it blurs with an exact Gaussian
    and mirrored borders where the C++ uses a recursive Gaussian with zero borders); on smaller
    images it uses one scale fewer and can be far off."""
    _check_pair(ref, dist)
    from ssimulacra2 import compute_ssimulacra2

    return float(compute_ssimulacra2(_ppm(ref), _ppm(dist)))


class ButteraugliUnavailable(RuntimeError):
    pass


def butteraugli_tool() -> str:
    """Path of the ``butteraugli`` command; raises :class:`ButteraugliUnavailable` if missing."""
    path = shutil.which(BUTTERAUGLI_TOOL)
    if path is None:
        raise ButteraugliUnavailable(
            "Butteraugli skipped: the 'butteraugli' command is not installed "
            "(Debian/Ubuntu: apt-get install butteraugli)"
        )
    return path


def butteraugli(ref: np.ndarray, dists: Sequence[np.ndarray], tool: str | None = None) -> list[float]:
    """Butteraugli max-norm distance of each of ``dists`` from ``ref`` (uint8 RGB of one size),
    from the ``butteraugli`` command (one run per pair; the reference is written once). The
    2017 command prints the max-norm only: no 3-norm."""
    for d in dists:
        _check_pair(ref, d)
    tool = tool or butteraugli_tool()
    out: list[float] = []
    with tempfile.TemporaryDirectory(prefix="deepraft-butteraugli-") as tmp:
        ref_path = os.path.join(tmp, "ref.png")
        Image.fromarray(ref).save(ref_path, compress_level=1)
        for i, d in enumerate(dists):
            path = os.path.join(tmp, f"dist{i}.png")
            Image.fromarray(d).save(path, compress_level=1)
            run = subprocess.run([tool, ref_path, path], capture_output=True, text=True, check=False)
            try:
                out.append(float(run.stdout.split()[0]))
            except (IndexError, ValueError):
                raise RuntimeError(
                    f"{tool} failed (exit {run.returncode}): {(run.stderr or run.stdout).strip()}"
                ) from None
            finally:
                os.unlink(path)
    return out


def column(metric: str, copy: str) -> str:
    """Column name of ``metric`` for a named copy: ``ssimulacra2`` for the stamped photo (copy
    ``""``), ``ssimulacra2_jpeg90`` for its JPEG-90 reference, ..."""
    return f"{metric}_{copy}" if copy else metric


def perceptual_setup(jpeg_references: Sequence[int]) -> tuple[str | None, str]:
    """(the butteraugli command, or None where it is missing, and a sentence for a summary
    saying what computed the perceptual metrics, or why Butteraugli was skipped)."""
    from importlib.metadata import version

    refs = ", ".join(f"q{q}" for q in jpeg_references) or "none"
    note = (
        f"SSIMULACRA 2 from the Python package ssimulacra2 {version('ssimulacra2')}; references: the original "
        f"re-saved as JPEG {refs} (Pillow, 4:2:0)."
    )
    try:
        path = butteraugli_tool()
    except ButteraugliUnavailable as exc:
        return None, f"{note} {exc}."
    return path, f"{note} Butteraugli max-norm from {path} (the 2017 release; it gives no 3-norm)."


def perceptual(ref: np.ndarray, copies: dict[str, np.ndarray], butteraugli_path: str | None) -> dict[str, float]:
    """SSIMULACRA 2 and (when ``butteraugli_path`` is given) the Butteraugli max-norm of every
    named copy against ``ref``, keyed by :func:`column`. The Butteraugli runs go on in a
    thread (each is another process) while SSIMULACRA 2 is computed here: two cores busy."""
    names = list(copies)
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(butteraugli, ref, [copies[n] for n in names], butteraugli_path) if butteraugli_path else None
        row = {column("ssimulacra2", n): ssimulacra2(ref, copies[n]) for n in names}
        if job is not None:
            row.update({column("butteraugli_max", n): v for n, v in zip(names, job.result())})
    return row


def column_stats(rows: Sequence[dict[str, object]], key: str, name_key: str = "photo") -> dict[str, object] | None:
    """Mean / min / max of column ``key`` over ``rows`` (rows without it are skipped) and the
    worst row: lowest value, or highest for the :data:`LOWER_IS_BETTER` metrics."""
    got = [(float(r[key]), str(r[name_key])) for r in rows if r.get(key) is not None]  # type: ignore[arg-type]
    if not got:
        return None
    vals = np.array([v for v, _ in got], dtype=np.float64)
    i = int(vals.argmax() if key.startswith(LOWER_IS_BETTER) else vals.argmin())
    return {
        "mean": float(vals.mean()),
        "min": float(vals.min()),
        "max": float(vals.max()),
        "worst": {name_key: got[i][1], "value": float(vals[i])},
    }


def jpeg_copy(rgb: np.ndarray, quality: int) -> np.ndarray:
    """``rgb`` saved as a JPEG of ``quality`` by Pillow with its defaults (4:2:0 chroma
    subsampling at every quality, as most cameras and re-uploads) and decoded again."""
    from deepraft.core.imageio import reencode

    return np.asarray(reencode(Image.fromarray(rgb), "JPEG", quality=quality).convert("RGB"))
