"""The evaluation's attack grid: everyday edits applied to full-resolution photos.

The grid is data: a list of (attack name, strengths). Each attack is a function
``(image, strength, rng) -> image`` on 8-bit RGB PIL images at full resolution; random parts
(crop position, rotation sign, corner moves, noise) come from ``rng`` so the same seed gives the
same edit for the stamped and the clean copy of a photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter

from ..augment import functional as AF
from ..imageio import reencode

Edit = Callable[[Image.Image, object, np.random.Generator], Image.Image]


def _tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def _image(t: torch.Tensor) -> Image.Image:
    arr = (t[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(arr)


def none(img, s, rng):
    return img


def jpeg(img, q, rng):
    return reencode(img, "JPEG", quality=int(q)).convert("RGB")


def webp(img, q, rng):
    return reencode(img, "WEBP", quality=int(q)).convert("RGB")


def resize(img, scale, rng):
    w, h = img.size
    return img.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BICUBIC)


def crop(img, area, rng):
    """Keep ``area`` of the picture (same aspect ratio), at a random position."""
    w, h = img.size
    cw, ch = max(8, round(w * math.sqrt(area))), max(8, round(h * math.sqrt(area)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def _inscribed(w: int, h: int, angle: float) -> tuple[int, int]:
    """Largest centred rectangle with the picture's aspect ratio inside a w x h picture
    rotated by ``angle`` radians."""
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    k = min(w / (w * c + h * s), h / (w * s + h * c))
    return max(8, int(w * k)), max(8, int(h * k))


def rotate(img, degrees, rng):
    """Rotate by +-``degrees`` (random sign) and crop to the largest rectangle of the same
    aspect ratio without borders, as a photo editor's 'straighten' does."""
    angle = float(degrees) * (1 if rng.random() < 0.5 else -1)
    rot = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    w, h = img.size
    cw, ch = _inscribed(w, h, math.radians(angle))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return rot.crop((x0, y0, x0 + cw, y0 + ch))


def perspective(img, amount, rng):
    """Move each corner by up to ``amount`` of the side (random directions); borders reflect."""
    offsets = torch.from_numpy(rng.uniform(-amount, amount, size=(1, 4, 2)).astype(np.float32))
    return _image(AF.perspective(_tensor(img), offsets))


def gaussian_blur(img, sigma, rng):
    return img.filter(ImageFilter.GaussianBlur(radius=float(sigma)))


def defocus(img, radius, rng):
    return _image(AF.defocus(_tensor(img), torch.tensor([float(radius)])))


def noise(img, sigma, rng):
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, float(sigma) * 255.0, size=(img.size[1], img.size[0], 3))
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def brightness(img, f, rng):
    return ImageEnhance.Brightness(img).enhance(float(f))


def contrast(img, f, rng):
    return ImageEnhance.Contrast(img).enhance(float(f))


def saturation(img, f, rng):
    return ImageEnhance.Color(img).enhance(float(f))


def hue(img, shift, rng):
    """Shift the hue by ``shift`` turns (torchvision's convention)."""
    hsv = np.asarray(img.convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(round(float(shift) * 256))) % 256).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def grayscale(img, s, rng):
    return img.convert("L").convert("RGB")


def hflip(img, s, rng):
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def screenshot(img, s, rng):
    """A screenshot of the picture shown on a screen: downscaled to fit a phone screen,
    cropped by the app's chrome, saved as PNG, then re-uploaded as JPEG 85."""
    w, h = img.size
    scale = min(1.0, 720.0 / max(w, h))
    small = img.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BILINEAR)
    cut = crop(small, 0.85, rng)
    return jpeg(reencode(cut, "PNG").convert("RGB"), 85, rng)


def combined(img, s, rng):
    """Crop to 70 % of the area, brighten by 1.2, JPEG quality 70."""
    return jpeg(brightness(crop(img, 0.7, rng), 1.2, rng), 70, rng)


EDITS: dict[str, Edit] = {
    "none": none, "jpeg": jpeg, "webp": webp, "resize": resize, "crop": crop, "rotate": rotate,
    "perspective": perspective, "gaussian_blur": gaussian_blur, "defocus": defocus, "noise": noise,
    "brightness": brightness, "contrast": contrast, "saturation": saturation, "hue": hue,
    "grayscale": grayscale, "hflip": hflip, "screenshot": screenshot, "combined": combined,
}

GRID: list[tuple[str, list]] = [
    ("none", [None]),
    ("jpeg", [90, 70, 50, 30, 10]),
    ("webp", [80, 50]),
    ("resize", [0.75, 0.5, 0.25]),
    ("crop", [0.8, 0.5, 0.25]),
    ("rotate", [5, 10, 15, 30, 45]),
    ("perspective", [0.1, 0.2, 0.3]),
    ("gaussian_blur", [1, 2, 3]),
    ("defocus", [2, 4]),
    ("noise", [0.02, 0.05, 0.1]),
    ("brightness", [0.5, 0.7, 1.3, 1.5, 2.0]),
    ("contrast", [0.5, 0.7, 1.3, 1.5, 2.0]),
    ("saturation", [0.0, 0.5, 1.5, 2.0]),
    ("hue", [-0.2, -0.1, 0.1, 0.2]),
    ("grayscale", [None]),
    ("hflip", [None]),
    ("screenshot", [None]),
    ("combined", [None]),
]
"""The full grid (attack, strengths)."""

QUICK_GRID: list[tuple[str, list]] = [
    ("none", [None]), ("jpeg", [50]), ("resize", [0.5]), ("crop", [0.5]), ("rotate", [10]),
    ("gaussian_blur", [2]), ("brightness", [1.5]), ("combined", [None]),
]
"""A few representative edits for ``--quick``."""


@dataclass(frozen=True)
class Condition:
    attack: str
    strength: object

    @property
    def label(self) -> str:
        return self.attack if self.strength is None else f"{self.attack} {self.strength}"

    def apply(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return EDITS[self.attack](img, self.strength, rng)


def conditions(grid: list[tuple[str, list]]) -> list[Condition]:
    unknown = [a for a, _ in grid if a not in EDITS]
    if unknown:
        raise ValueError(f"unknown attack(s) in grid: {unknown}; known: {sorted(EDITS)}")
    return [Condition(a, s) for a, strengths in grid for s in strengths]
