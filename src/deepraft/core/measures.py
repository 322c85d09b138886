"""Pixel measures shared across the package: PSNR and luma (NumPy; no model, no torch).

The differentiable PSNR of training is :func:`deepraft.models.functional.psnr` (torch, the
same formula with peak 1).
"""

from __future__ import annotations

import math

import numpy as np

LUMA_BT601 = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G and B (what JPEG and Pillow's ``convert("L")`` use)."""


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two images of the same shape (``inf`` when they are equal)."""
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (peak 255)."""
    return psnr(a, b, 255.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (float32, same scale as the input) of (..., 3 or 4) RGB(A) pixels."""
    return np.asarray(rgb)[..., :3].astype(np.float32) @ np.array(LUMA_BT601, dtype=np.float32)
