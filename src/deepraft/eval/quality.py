"""Imperceptibility metrics on 8-bit images: PSNR, SSIM, MS-SSIM, and LPIPS when possible."""

from __future__ import annotations

import numpy as np
import torch
from kornia.filters import gaussian_blur2d
from kornia.metrics import ssim as k_ssim
from torch.nn import functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / 255.0


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5) of two uint8 RGB images, channels averaged."""
    return float(k_ssim(to_tensor(a), to_tensor(b), 11).mean())


def _ssim_parts(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c1, c2 = 0.01**2, 0.03**2
    blur = lambda t: gaussian_blur2d(t, (11, 11), (1.5, 1.5), border_type="reflect")  # noqa: E731
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


def lpips_metric():
    """An LPIPS (AlexNet) callable if the ``lpips`` package and its backbone weights are
    already on this machine; raises :class:`LpipsUnavailable` with the reason otherwise
    (deepraft never downloads weights)."""
    try:
        import lpips  # type: ignore
    except ImportError as exc:
        raise LpipsUnavailable("LPIPS skipped: the 'lpips' package is not installed") from exc
    hub = torch.hub.get_dir()
    import glob
    import os

    if not glob.glob(os.path.join(hub, "checkpoints", "alexnet-*.pth")):
        raise LpipsUnavailable(f"LPIPS skipped: AlexNet backbone weights are not in {hub}/checkpoints "
                               "(they cannot be downloaded here)")
    net = lpips.LPIPS(net="alex", verbose=False).eval()

    def metric(a: np.ndarray, b: np.ndarray) -> float:
        with torch.no_grad():
            return float(net(to_tensor(a) * 2 - 1, to_tensor(b) * 2 - 1).mean())

    return metric
