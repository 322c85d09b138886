"""Known answers for the imperceptibility metrics: MS-SSIM against a reference written
differently (SciPy filters in float64, the published definition step by step)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from deepraft.evaluation.quality import MS_SSIM_WEIGHTS, ms_ssim, ssim
from tests.conftest import synthetic_photo


def _gauss(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _ref_parts(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term over channels and pixels (Wang et al. 2004,
    C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 1), borders mirrored."""
    k = _gauss()
    c1, c2 = 0.01**2, 0.03**2
    s_all, cs_all = [], []
    for c in range(x.shape[2]):
        a, b = x[..., c], y[..., c]

        def f(t: np.ndarray) -> np.ndarray:
            return ndimage.correlate(t, k, mode="mirror")

        ma, mb = f(a), f(b)
        va, vb, cov = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
        cs = (2 * cov + c2) / (va + vb + c2)
        lum = (2 * ma * mb + c1) / (ma**2 + mb**2 + c1)
        s_all.append((lum * cs).mean())
        cs_all.append(cs.mean())
    return float(np.mean(s_all)), float(np.mean(cs_all))


def _halve(t: np.ndarray) -> np.ndarray:
    h, w = t.shape[0] // 2 * 2, t.shape[1] // 2 * 2
    t = t[:h, :w]
    return t.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))


def reference_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (Wang, Simoncelli & Bovik 2003): contrast-structure at the finer scales, full
    SSIM at the coarsest, weighted product with the published weights (renormalised when the
    picture allows fewer than five scales)."""
    x, y = a.astype(np.float64) / 255.0, b.astype(np.float64) / 255.0
    scales = max(1, min(5, int(np.floor(np.log2(min(x.shape[:2]) / 11))) + 1))
    w = np.array(MS_SSIM_WEIGHTS[:scales])
    w /= w.sum()
    out = 1.0
    for i in range(scales):
        s, cs = _ref_parts(x, y)
        out *= max(s if i == scales - 1 else cs, 1e-8) ** w[i]
        x, y = _halve(x), _halve(y)
    return out


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(synthetic_photo(3, 200, 184))
    noise = np.random.default_rng(0).normal(0, 6, a.shape)
    return a, np.clip(np.rint(a + noise), 0, 255).astype(np.uint8)


def test_ms_ssim_of_identical_images_is_one(pair):
    a, _ = pair
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("size", [(200, 184), (60, 90), (400, 353)])
def test_ms_ssim_matches_the_reference(size):
    a = np.asarray(synthetic_photo(5, *size))
    b = np.clip(np.rint(a + np.random.default_rng(1).normal(0, 10, a.shape)), 0, 255).astype(np.uint8)
    ours, ref = ms_ssim(a, b), reference_ms_ssim(a, b)
    assert 0.3 < ref < 0.999  # a real distortion, neither trivial nor destroyed
    assert ours == pytest.approx(ref, abs=2e-4)


def test_ms_ssim_is_symmetric_and_falls_with_the_noise(pair):
    a, b = pair
    assert ms_ssim(a, b) == pytest.approx(ms_ssim(b, a), abs=1e-6)
    worse = np.clip(np.rint(a + np.random.default_rng(2).normal(0, 20, a.shape)), 0, 255).astype(np.uint8)
    assert ms_ssim(a, worse) < ms_ssim(a, b) < 1.0


def test_ms_ssim_ignores_a_constant_brightness_shift_less_than_noise(pair):
    """A +3 brightness shift changes only the luminance term (coarsest scale): MS-SSIM stays
    near 1, well above the value for noise of a similar PSNR."""
    a, _ = pair
    shifted = np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)
    assert ms_ssim(a, shifted) > 0.999
    assert reference_ms_ssim(a, shifted) == pytest.approx(ms_ssim(a, shifted), abs=2e-4)
