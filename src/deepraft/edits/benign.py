"""The registry of benign edits: everyday changes to a picture, as pure PIL-level functions.

"Attack" means three things in this package; this module holds the second:

1. **training augmentations** (:mod:`deepraft.training`): differentiable, batched torch versions
   of these edits, applied inside the training loop (``deepraft.training.augment.AUGMENTATIONS``);
2. **benign edits** (this module): what people do to a picture on its way (re-compression,
   resizing, crops, colour, mirrors and turns, borders, collages, stickers, captions, a camera
   recapture), on full-resolution 8-bit RGB PIL images. The evaluation grid
   (:mod:`deepraft.edits.grids`: names and strengths, data), calibration's benign uploads
   (:mod:`deepraft.evaluation.calibrate`, through :data:`UPLOAD_KINDS` and :func:`sample_upload_codec`) and
   the demo's forwards (:mod:`deepraft.apps.demo`, :data:`FORWARDS`) all select from :data:`EDITS`;
   :data:`TRAINING_COUNTERPARTS` says which edits each training augmentation stands for;
3. **adversarial attacks and model-free forgeries** (:mod:`deepraft.evaluation.adversaries`): an attacker
   who optimises against the scanner or studies stamped pictures.

Every edit is ``(image, strength, rng) -> image``: random parts (crop position, rotation sign,
corner moves, noise) come from ``rng``, so the same seed gives the same edit for the stamped and
the clean copy of a photo. A *sampler* ``rng -> (edit, strength)`` draws one step for
calibration. A ``chain`` edit applies (edit, strength) steps in order (its strength is a
:class:`Chain`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from deepraft.core.imageio import reencode

if TYPE_CHECKING:
    import torch

Edit = Callable[[Image.Image, Any, np.random.Generator], Image.Image]
"""``(image, strength, rng) -> image`` on 8-bit RGB PIL images."""


def _tensor(img: Image.Image) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def _image(t: torch.Tensor) -> Image.Image:
    arr = (t[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(arr)


def none(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    return img


def jpeg(img: Image.Image, q: Any, rng: np.random.Generator) -> Image.Image:
    return reencode(img, "JPEG", quality=int(q)).convert("RGB")


def webp(img: Image.Image, q: Any, rng: np.random.Generator) -> Image.Image:
    return reencode(img, "WEBP", quality=int(q)).convert("RGB")


def resize(img: Image.Image, scale: Any, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    return img.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BICUBIC)


def _offset(rng: np.random.Generator, room: int) -> int:
    """A random offset in [0, room]: flush with either edge 1/6 of the time each, uniform
    between, so crops and pastes reach the corners and edges of the frame, not only its middle."""
    return round(float(np.clip(rng.uniform(-0.25, 1.25), 0.0, 1.0)) * max(0, room))


def crop(img: Image.Image, area: Any, rng: np.random.Generator) -> Image.Image:
    """Keep ``area`` of the picture (same aspect ratio), anywhere in the frame (corners and
    edges included: see :func:`_offset`)."""
    w, h = img.size
    cw, ch = min(w, max(8, round(w * math.sqrt(area)))), min(h, max(8, round(h * math.sqrt(area))))
    x0, y0 = _offset(rng, w - cw), _offset(rng, h - ch)
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def _inscribed(w: int, h: int, angle: float) -> tuple[int, int]:
    """Largest centred rectangle with the picture's aspect ratio inside a w x h picture
    rotated by ``angle`` radians."""
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    k = min(w / (w * c + h * s), h / (w * s + h * c))
    return max(8, int(w * k)), max(8, int(h * k))


def rotate(img: Image.Image, degrees: Any, rng: np.random.Generator) -> Image.Image:
    """Rotate by +-``degrees`` (random sign) and crop to the largest rectangle of the same
    aspect ratio without borders, as a photo editor's 'straighten' does."""
    angle = float(degrees) * (1 if rng.random() < 0.5 else -1)
    rot = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    w, h = img.size
    cw, ch = _inscribed(w, h, math.radians(angle))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return rot.crop((x0, y0, x0 + cw, y0 + ch))


def perspective(img: Image.Image, amount: Any, rng: np.random.Generator) -> Image.Image:
    """Move each corner by up to ``amount`` of the side (random directions); borders reflect."""
    import torch

    from deepraft.edits import functional as AF

    offsets = torch.from_numpy(rng.uniform(-amount, amount, size=(1, 4, 2)).astype(np.float32))
    return _image(AF.perspective(_tensor(img), offsets))


def gaussian_blur(img: Image.Image, sigma: Any, rng: np.random.Generator) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius=float(sigma)))


def defocus(img: Image.Image, radius: Any, rng: np.random.Generator) -> Image.Image:
    import torch

    from deepraft.edits import functional as AF

    return _image(AF.defocus(_tensor(img), torch.tensor([float(radius)])))


def noise(img: Image.Image, sigma: Any, rng: np.random.Generator) -> Image.Image:
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, float(sigma) * 255.0, size=(img.size[1], img.size[0], 3))
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def brightness(img: Image.Image, f: Any, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(float(f))


def contrast(img: Image.Image, f: Any, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Contrast(img).enhance(float(f))


def saturation(img: Image.Image, f: Any, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Color(img).enhance(float(f))


def hue(img: Image.Image, shift: Any, rng: np.random.Generator) -> Image.Image:
    """Shift the hue by ``shift`` turns (torchvision's convention)."""
    hsv = np.asarray(img.convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + round(float(shift) * 256)) % 256).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def grayscale(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    return img.convert("L").convert("RGB")


def hflip(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def screenshot(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    """A screenshot of the picture shown on a screen: downscaled to fit a phone screen,
    cropped by the app's chrome, saved as PNG, then re-uploaded as JPEG 85."""
    w, h = img.size
    scale = min(1.0, 720.0 / max(w, h))
    small = img.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BILINEAR)
    cut = crop(small, 0.85, rng)
    return jpeg(reencode(cut, "PNG").convert("RGB"), 85, rng)


def combined(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    """Crop to 70 % of the area, brighten by 1.2, JPEG quality 70."""
    return jpeg(brightness(crop(img, 0.7, rng), 1.2, rng), 70, rng)


def messenger(img: Image.Image, long_side: Any, rng: np.random.Generator) -> Image.Image:
    """What a messenger does to a sent photo: shrink it (never enlarge) so its long side is at
    most ``long_side`` px (1280 when None), then JPEG quality 70."""
    w, h = img.size
    limit = 1280 if long_side is None else int(long_side)
    if max(w, h) > limit:
        f = limit / max(w, h)
        img = img.resize((max(8, round(w * f)), max(8, round(h * f))), Image.Resampling.BICUBIC)
    return jpeg(img, 70, rng)


def gamma(img: Image.Image, g: Any, rng: np.random.Generator) -> Image.Image:
    """Tone curve ``out = in ** g`` (g < 1 lifts the shadows, g > 1 darkens the mid-tones)."""
    lut = [min(255, round(255.0 * (i / 255.0) ** float(g))) for i in range(256)]
    return img.convert("RGB").point(lut * 3)


PHONE_SCREEN = (1080, 2340)
"""A phone screen in pixels (width, height), portrait."""


def _chat_chrome(
    d: ImageDraw.ImageDraw, w: int, h: int, bars: tuple[int, int, int], dark: bool, rng: np.random.Generator
) -> None:
    """A chat app's chrome on a ``w`` x ``h`` screen: status bar, header with a name, input bar."""
    status, header, bottom = bars
    fg, panel = ((235, 235, 235), (32, 36, 40)) if dark else ((20, 20, 20), (245, 245, 247))
    d.rectangle([0, 0, w, status + header], fill=panel)
    d.rectangle([0, h - bottom, w, h], fill=panel)
    small, big = _font(round(status * 0.55)), _font(round(header * 0.3))
    d.text((40, status * 0.2), f"{int(rng.integers(7, 23))}:{int(rng.integers(0, 60)):02d}", fill=fg, font=small)
    d.ellipse([40, status + header * 0.2, 40 + header * 0.6, status + header * 0.8], fill=(120, 140, 200))
    name = " ".join(CAPTION_WORDS[int(i)] for i in rng.integers(0, len(CAPTION_WORDS), 2)).title()
    d.text((60 + header * 0.6, status + header * 0.3), name, fill=fg, font=big)
    d.rounded_rectangle(
        [30, h - bottom + 25, w - 160, h - 25], radius=bottom // 3, fill=(255, 255, 255) if not dark else (60, 64, 70)
    )
    d.ellipse([w - 130, h - bottom + 25, w - 30, h - 25], fill=(40, 160, 90))


def phone_screenshot(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    """A phone screenshot of the picture shown in a chat: a 1080 x 2340 screen (light or dark
    theme) with a status bar, the chat's header and its input bar; the picture full width (or
    as tall as the room between the bars), anywhere between them; saved as PNG then uploaded as
    JPEG 90."""
    sw, sh = PHONE_SCREEN
    bars = (80, 170, 150)
    dark = bool(rng.random() < 0.5)
    screen = Image.new("RGB", (sw, sh), (12, 14, 16) if dark else (230, 222, 210))
    room = sh - sum(bars)
    w, h = img.size
    f = min(sw / w, room / h)
    pw, ph = max(8, round(w * f)), max(8, round(h * f))
    top = bars[0] + bars[1] + _offset(rng, room - ph)
    screen.paste(img.convert("RGB").resize((pw, ph), Image.Resampling.BICUBIC), ((sw - pw) // 2, top))
    _chat_chrome(ImageDraw.Draw(screen), sw, sh, bars, dark, rng)
    return jpeg(reencode(screen, "PNG").convert("RGB"), 90, rng)


# -- what a forwarder does to get a picture through ---------------------------------------------


def vflip(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)


def rot90(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    """A quarter turn counter-clockwise."""
    return img.transpose(Image.Transpose.ROTATE_90)


def rot180(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    return img.transpose(Image.Transpose.ROTATE_180)


def rot270(img: Image.Image, s: Any, rng: np.random.Generator) -> Image.Image:
    """A three-quarter turn counter-clockwise (a quarter turn clockwise)."""
    return img.transpose(Image.Transpose.ROTATE_270)


def tilt(img: Image.Image, degrees: Any, rng: np.random.Generator) -> Image.Image:
    """Rotate by exactly ``degrees`` (signed, counter-clockwise) inside the same frame, black
    corners (no crop, no draw from ``rng``)."""
    return img.rotate(float(degrees), resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))


def _tilt(degrees: float, rng: np.random.Generator) -> float:
    """A random sign and an angle within +-20 % of ``degrees``."""
    return float(degrees) * float(rng.uniform(0.8, 1.2)) * (1 if rng.random() < 0.5 else -1)


def rotate_corners(img: Image.Image, degrees: Any, rng: np.random.Generator) -> Image.Image:
    """Rotate by about +-``degrees`` inside the same frame: the corners cut off, black wedges
    in their place (no crop)."""
    return tilt(img, _tilt(degrees, rng), rng)


def rotate_expand(img: Image.Image, degrees: Any, rng: np.random.Generator) -> Image.Image:
    """Rotate by about +-``degrees`` onto a canvas large enough for the whole picture, black
    around it."""
    return img.rotate(_tilt(degrees, rng), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))


def stretch(img: Image.Image, amount: Any, rng: np.random.Generator) -> Image.Image:
    """Scale one axis (random) by 1 +- ``amount`` (random sign): the aspect ratio changes."""
    w, h = img.size
    f = 1.0 + float(amount) * (1 if rng.random() < 0.5 else -1)
    if rng.random() < 0.5:
        return img.resize((max(8, round(w * f)), h), Image.Resampling.BICUBIC)
    return img.resize((w, max(8, round(h * f))), Image.Resampling.BICUBIC)


def _blurred_fill(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The picture stretched over ``size`` and blurred beyond recognition (the 'blurred
    background' of story and video apps)."""
    small = img.copy()
    small.thumbnail((64, 64), Image.Resampling.BILINEAR)
    return small.filter(ImageFilter.GaussianBlur(radius=4)).resize(size, Image.Resampling.BICUBIC)


PAD_FILLS = ("black", "white", "blur")


def pad_geometry(w: int, h: int, fraction: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Canvas size and paste offset for :func:`pad`: the borders take ``fraction`` of the
    canvas side along the padded axes: top and bottom (letterbox), left and right (pillarbox) or
    all four (frame), split unevenly between the two sides of an axis."""
    mode = int(rng.integers(0, 3))
    cw = round(w / (1 - fraction)) if mode in (1, 2) else w
    ch = round(h / (1 - fraction)) if mode in (0, 2) else h
    x0 = round((cw - w) * float(rng.uniform(0.25, 0.75)))
    y0 = round((ch - h) * float(rng.uniform(0.25, 0.75)))
    return cw, ch, x0, y0


def pad(img: Image.Image, fraction: Any, rng: np.random.Generator) -> Image.Image:
    """Letterbox the picture: borders of black, white or a blurred copy of the picture (drawn
    from ``rng``) making up ``fraction`` of the side (see :func:`pad_geometry`)."""
    w, h = img.size
    cw, ch, x0, y0 = pad_geometry(w, h, float(fraction), rng)
    fill = PAD_FILLS[int(rng.integers(0, len(PAD_FILLS)))]
    canvas = _blurred_fill(img, (cw, ch)) if fill == "blur" else Image.new("RGB", (cw, ch), fill)
    canvas.paste(img.convert("RGB"), (x0, y0))
    return canvas


def pink_noise(h: int, w: int, rng: np.random.Generator, exponent: float = 2.0) -> np.ndarray:
    """Gaussian noise with a 1/f**``exponent`` power spectrum (natural images: about 2),
    zero mean, unit standard deviation, shape (h, w)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** (exponent / 2)
    spectrum[0, 0] = 0.0
    out = np.fft.irfft2(spectrum, s=(h, w))
    return out / (out.std() + 1e-12)


def natural_background(w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """A picture unrelated to any photo, with the statistics of one: a colour gradient, 1/f
    texture and a few soft-edged shapes, made at low resolution from ``rng`` and enlarged to
    ``w`` x ``h`` with a little grain."""
    k = min(1.0, 256.0 / max(w, h))
    sw, sh = max(8, round(w * k)), max(8, round(h * k))
    yy, xx = np.mgrid[0:sh, 0:sw] / max(sw, sh)
    theta = rng.uniform(0, 2 * np.pi)
    t = (np.cos(theta) * xx + np.sin(theta) * yy)[..., None]
    t = (t - t.min()) / (np.ptp(t) + 1e-12)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    arr = c0 * (1 - t) + c1 * t
    texture = np.stack([pink_noise(sh, sw, rng, float(rng.uniform(1.8, 2.4))) for _ in range(3)], -1)
    mix = rng.uniform(0.3, 1.0, 3) * rng.uniform(15, 40)
    arr = arr + texture.mean(-1, keepdims=True) * mix.mean() + texture * mix * 0.4
    base = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    shapes = Image.new("RGB", (sw, sh))
    mask = Image.new("L", (sw, sh), 0)
    d, dm = ImageDraw.Draw(shapes), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(3, 9))):
        cx, cy = rng.uniform(0, sw), rng.uniform(0, sh)
        rx, ry = rng.uniform(0.05, 0.3) * sw, rng.uniform(0.05, 0.3) * sh
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            d.ellipse(box, fill=colour)
            dm.ellipse(box, fill=255)
        else:
            pts = [
                (cx + rx * np.cos(a), cy + ry * np.sin(a))
                for a in np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
            ]
            d.polygon(pts, fill=colour)
            dm.polygon(pts, fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 2.0))))
    base = Image.composite(shapes, base, mask).resize((w, h), Image.Resampling.BICUBIC)
    grain = rng.normal(0.0, 2.0, size=(h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(np.asarray(base, dtype=np.float32) + grain, 0, 255).astype(np.uint8))


def collage_geometry(w: int, h: int, scale: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Size and offset of the picture pasted by :func:`collage` on a ``w`` x ``h`` canvas."""
    pw, ph = max(8, round(w * scale)), max(8, round(h * scale))
    return pw, ph, _offset(rng, w - pw), _offset(rng, h - ph)


def paste_into(
    img: Image.Image, scale: float, rng: np.random.Generator, backdrop: Callable[[int, int], Image.Image]
) -> Image.Image:
    """``img`` shrunk to ``scale`` of each side and pasted anywhere onto ``backdrop(w, h)``, a
    picture of its size (drawn after the placement; a copy, so a shared backdrop stays as it was)."""
    w, h = img.size
    pw, ph, x0, y0 = collage_geometry(w, h, float(scale), rng)
    canvas = backdrop(w, h).convert("RGB").copy()
    canvas.paste(img.convert("RGB").resize((pw, ph), Image.Resampling.BICUBIC), (x0, y0))
    return canvas


def collage(img: Image.Image, scale: Any, rng: np.random.Generator) -> Image.Image:
    """The picture shrunk to ``scale`` of each side of the canvas (a canvas the size of the
    picture) and pasted anywhere into an unrelated picture (:func:`natural_background`)."""
    return paste_into(img, float(scale), rng, lambda w, h: natural_background(w, h, rng))


def _emoji(d: ImageDraw.ImageDraw, box: list[float], colour: tuple[int, int, int], rng: np.random.Generator) -> None:
    """An emoji-like face: a disc with two eyes and a mouth."""
    x0, y0, x1, _ = box
    r = (x1 - x0) / 2
    cx, cy = x0 + r, y0 + r
    d.ellipse(box, fill=colour)
    ink = (30, 30, 30)
    for sx in (-1, 1):
        d.ellipse(
            [
                cx + sx * 0.35 * r - 0.12 * r,
                cy - 0.3 * r - 0.15 * r,
                cx + sx * 0.35 * r + 0.12 * r,
                cy - 0.3 * r + 0.15 * r,
            ],
            fill=ink,
        )
    smile = rng.random() < 0.7
    d.arc(
        [
            cx - 0.55 * r,
            cy - 0.3 * r if smile else cy + 0.15 * r,
            cx + 0.55 * r,
            cy + 0.55 * r if smile else cy + 0.9 * r,
        ],
        start=20 if smile else 200,
        end=160 if smile else 340,
        fill=ink,
        width=max(1, round(0.08 * r)),
    )


STICKER_COLOURS = ((255, 204, 77), (244, 67, 54), (76, 175, 80), (33, 150, 243), (255, 255, 255), (156, 39, 176))


def stickers(img: Image.Image, area: Any, rng: np.random.Generator) -> Image.Image:
    """Opaque stickers (emoji-like faces, discs, stars, boxes) at random places, sizes and
    colours, until they cover ``area`` of the picture (+ less than one percent)."""
    out = img.convert("RGB").copy()
    w, h = out.size
    mask = Image.new("L", (w, h), 0)
    d, dm = ImageDraw.Draw(out), ImageDraw.Draw(mask)
    target = float(area) * w * h
    covered = 0
    for _ in range(500):
        if covered >= target:
            break
        a = min(float(rng.uniform(0.01, 0.05)) * w * h, target - covered + 0.005 * w * h)
        r = max(2.0, math.sqrt(a / math.pi))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        box = [cx - r, cy - r, cx + r, cy + r]
        colour = STICKER_COLOURS[int(rng.integers(0, len(STICKER_COLOURS)))]
        kind = int(rng.integers(0, 4))
        if kind == 0:
            _emoji(d, box, colour, rng)
            dm.ellipse(box, fill=255)
        elif kind == 1:
            d.ellipse(box, fill=colour)
            dm.ellipse(box, fill=255)
        elif kind == 2:
            n = int(rng.integers(5, 8))
            rot = rng.uniform(0, 2 * np.pi)
            pts = [
                (
                    cx + r * (1.0 if i % 2 == 0 else 0.5) * math.cos(rot + i * math.pi / n),
                    cy + r * (1.0 if i % 2 == 0 else 0.5) * math.sin(rot + i * math.pi / n),
                )
                for i in range(2 * n)
            ]
            d.polygon(pts, fill=colour)
            dm.polygon(pts, fill=255)
        else:
            half = r * math.sqrt(math.pi) / 2
            rect = [cx - half, cy - half, cx + half, cy + half]
            d.rounded_rectangle(rect, radius=half * 0.3, fill=colour)
            dm.rounded_rectangle(rect, radius=half * 0.3, fill=255)
        covered = int(np.count_nonzero(np.asarray(mask)))
    return out


CAPTION_WORDS = (
    "when",
    "you",
    "see",
    "it",
    "lol",
    "me",
    "every",
    "monday",
    "nobody",
    "look",
    "at",
    "this",
    "forward",
    "to",
    "everyone",
    "wow",
    "so",
    "true",
    "mood",
    "again",
)


def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=max(6, px))
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def caption(img: Image.Image, area: Any, rng: np.random.Generator) -> Image.Image:
    """A caption bar (white with black text or black with white text) across the top or the
    bottom, ``area`` of the picture's height, hence of its area."""
    out = img.convert("RGB").copy()
    w, h = out.size
    bh = max(1, round(float(area) * h))
    top = 0 if rng.random() < 0.5 else h - bh
    dark = rng.random() < 0.5
    d = ImageDraw.Draw(out)
    d.rectangle([0, top, w - 1, top + bh - 1], fill=(0, 0, 0) if dark else (255, 255, 255))
    words = " ".join(CAPTION_WORDS[int(i)] for i in rng.integers(0, len(CAPTION_WORDS), int(rng.integers(3, 7))))
    font = _font(round(bh * 0.5))
    x0, y0, x1, y1 = d.textbbox((0, 0), words.upper(), font=font)
    d.text(
        (max(0, (w - (x1 - x0)) // 2 - x0), top + max(0, (bh - (y1 - y0)) // 2 - y0)),
        words.upper(),
        fill=(255, 255, 255) if dark else (0, 0, 0),
        font=font,
    )
    return out


def perspective_coeffs(dst: Sequence[tuple[float, float]], src: Sequence[tuple[float, float]]) -> list[float]:
    """PIL's PERSPECTIVE coefficients mapping output points ``dst`` to input points ``src``
    (four pairs each)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -x * u, -y * u])
        rows.append([0, 0, 0, x, y, 1, -x * v, -y * v])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows, dtype=np.float64), np.array(rhs, dtype=np.float64)).tolist()


def keystone(
    img: Image.Image, amount: float, rng: np.random.Generator, fill: tuple[int, int, int] = (0, 0, 0)
) -> Image.Image:
    """The picture seen at an angle in the same frame: each corner moved inwards by 1 % to
    1 % + ``amount`` of the side, ``fill`` around it."""
    w, h = img.size
    m = rng.uniform(0.01, 0.01 + float(amount), size=(4, 2)) * np.array([w, h])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)
    dst = corners + inward * m
    coeffs = perspective_coeffs([tuple(p) for p in dst], [tuple(p) for p in corners])
    return img.convert("RGB").transform(
        (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=fill
    )


def recapture(img: Image.Image, severity: Any, rng: np.random.Generator) -> Image.Image:
    """A phone photo of the picture on a screen: keystone (corners in by up to 1 % + 8 % x
    ``severity`` of the side, dark bezel around), lens blur (radius 0.5 x ``severity`` per 512
    px), exposure gamma (exp(+-0.25 x ``severity``)), sensor noise (sigma (1 + 1.5 x
    ``severity``)/255), then the phone's JPEG (quality 70-90)."""
    s = float(severity)
    w, h = img.size
    r, g, b = (int(c) for c in rng.integers(5, 45, 3))
    bezel = (r, g, b)
    out = keystone(img, 0.08 * s, rng, fill=bezel)
    out = out.filter(ImageFilter.GaussianBlur(radius=0.5 * s * max(1.0, max(w, h) / 512)))
    gamma = math.exp(float(rng.uniform(-0.25, 0.25)) * s)
    arr = 255.0 * (np.asarray(out, dtype=np.float32) / 255.0) ** gamma
    arr += rng.normal(0.0, 1.0 + 1.5 * s, size=arr.shape).astype(np.float32)
    out = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    return jpeg(out, int(rng.integers(70, 91)), rng)


class Chain(tuple):
    """The strength of a ``chain`` edit: (edit, strength) steps applied in order with one
    ``rng``; prints as ``hflip+pad 0.2`` (labels, CSV)."""

    def __new__(cls, steps):
        return super().__new__(cls, tuple((str(a), s) for a, s in steps))

    def __str__(self) -> str:
        return "+".join(a if s is None else f"{a} {s}" for a, s in self)

    def __repr__(self) -> str:
        return f"Chain({tuple(self)!r})"

    def __reduce__(self):
        return (Chain, (tuple(self),))


# -- the variants of an ordinary upload (calibration's benign edits) ----------------------------


def crop_uniform(img: Image.Image, area: Any, rng: np.random.Generator) -> Image.Image:
    """Keep ``area`` of the picture (same aspect ratio, at least 16 px a side) at a position
    uniform over the whole-pixel offsets."""
    w, h = img.size
    cw, ch = max(16, int(w * math.sqrt(area))), max(16, int(h * math.sqrt(area)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def center_crop(img: Image.Image, margin: Any, rng: np.random.Generator) -> Image.Image:
    """Cut ``margin`` of the width (of the height) off the left and the right (top and bottom)."""
    w, h = img.size
    mx, my = int(w * float(margin)), int(h * float(margin))
    return img.crop((mx, my, w - mx, h - my))


def color(img: Image.Image, factors: Any, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast and saturation factors ``factors`` = (b, c, s), applied in that order."""
    b, c, sat = (float(f) for f in factors)
    img = ImageEnhance.Brightness(img).enhance(b)
    img = ImageEnhance.Contrast(img).enhance(c)
    return ImageEnhance.Color(img).enhance(sat)


def border(img: Image.Image, fraction: Any, rng: np.random.Generator) -> Image.Image:
    """A flat border in black, white or a random grey adding ``fraction`` of each side in total,
    the picture at a random place inside it."""
    w, h = img.size
    grey = (int(rng.integers(256)),) * 3
    colour = [(0, 0, 0), (255, 255, 255), grey][int(rng.integers(3))]
    pw, ph = round(w * float(fraction)), round(h * float(fraction))
    canvas = Image.new("RGB", (w + pw, h + ph), colour)
    canvas.paste(img, (int(rng.integers(0, pw + 1)), int(rng.integers(0, ph + 1))))
    return canvas


def caption_bar(img: Image.Image, height: Any, rng: np.random.Generator) -> Image.Image:
    """A bar of one random flat colour, ``height`` of the picture's height (at least 1 px), across
    the top or the bottom (no text: :func:`caption` writes some)."""
    out = img.copy()
    bar = max(1, int(out.size[1] * float(height)))
    top = 0 if rng.random() < 0.5 else out.size[1] - bar
    out.paste(tuple(int(v) for v in rng.integers(0, 256, 3)), (0, top, out.size[0], top + bar))
    return out


def chain(img: Image.Image, steps: Any, rng: np.random.Generator) -> Image.Image:
    """Apply the (edit, strength) ``steps`` one after the other."""
    for name, strength in steps:
        img = EDITS[name](img, strength, rng)
    return img


Scenery = Callable[[int, tuple[int, int], np.random.Generator], list[Image.Image]]
"""``(n, (width, height), rng) -> n`` other pictures of that size, drawn with ``rng``: what a
scene edit puts around the picture."""

SceneEdit = Callable[[Image.Image, Any, np.random.Generator, Scenery], Image.Image]
"""``(image, strength, rng, scenery) -> image``: an edit that puts the picture among others."""


def generated_scenery(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[Image.Image]:
    """``n`` pictures of :func:`natural_background` (when no real photos are at hand)."""
    return [natural_background(size[0], size[1], rng) for _ in range(n)]


def paste(img: Image.Image, scale: Any, rng: np.random.Generator, scenery: Scenery) -> Image.Image:
    """The picture shrunk to ``scale`` of each side and pasted anywhere into another picture of
    its size from ``scenery`` (in the evaluation: another photo of the set)."""
    return paste_into(img, float(scale), rng, lambda w, h: scenery(1, (w, h), rng)[0])


def photo_grid(img: Image.Image, s: Any, rng: np.random.Generator, scenery: Scenery) -> Image.Image:
    """A 2 x 2 grid the size of the picture: the picture, shrunk to half of each side, in a
    random cell, three pictures from ``scenery`` in the others."""
    w, h = img.size
    cw, ch = max(8, w // 2), max(8, h // 2)
    cells = [(0, 0), (cw, 0), (0, ch), (cw, ch)]
    mine = int(rng.integers(4))
    others = iter(scenery(3, (cw, ch), rng))
    canvas = Image.new("RGB", (2 * cw, 2 * ch))
    for i, at in enumerate(cells):
        canvas.paste(img.convert("RGB").resize((cw, ch), Image.Resampling.BICUBIC) if i == mine else next(others), at)
    return canvas


SCENE_EDITS: dict[str, SceneEdit] = {"paste": paste, "photo_grid": photo_grid}
"""Edits that put the picture among other pictures (a :data:`Scenery`): collages of real photos.
The evaluation draws the scenery from the other photos of its set."""


EDITS: dict[str, Edit] = {
    "none": none,
    "jpeg": jpeg,
    "webp": webp,
    "resize": resize,
    "crop": crop,
    "rotate": rotate,
    "perspective": perspective,
    "gaussian_blur": gaussian_blur,
    "defocus": defocus,
    "noise": noise,
    "brightness": brightness,
    "contrast": contrast,
    "saturation": saturation,
    "hue": hue,
    "grayscale": grayscale,
    "hflip": hflip,
    "screenshot": screenshot,
    "combined": combined,
    "vflip": vflip,
    "rot90": rot90,
    "rot180": rot180,
    "rot270": rot270,
    "rotate_corners": rotate_corners,
    "rotate_expand": rotate_expand,
    "stretch": stretch,
    "pad": pad,
    "collage": collage,
    "stickers": stickers,
    "caption": caption,
    "recapture": recapture,
    "chain": chain,
    "tilt": tilt,
    "crop_uniform": crop_uniform,
    "center_crop": center_crop,
    "color": color,
    "border": border,
    "caption_bar": caption_bar,
    "messenger": messenger,
    "gamma": gamma,
    "phone_screenshot": phone_screenshot,
}
"""Every benign edit by name. The evaluation grid, calibration and the demo select from it."""

Step = tuple[str, Any]
"""One (edit name, strength) step."""


@dataclass(frozen=True)
class UploadKind:
    """One kind of ordinary upload edit for calibration: ``sample(rng)`` draws a step whose
    edit is one of ``edits``."""

    edits: tuple[str, ...]
    sample: Callable[[np.random.Generator], Step]


TURNS = ("rot90", "rot180", "rot270", "vflip")
"""A quarter, half or three-quarter turn, or an upside-down mirror."""


def _sample_color(rng: np.random.Generator) -> Step:
    """Brightness and contrast log-uniform in [1/2, 2], saturation uniform in [0, 2]: dark,
    washed-out and punchy edits."""
    b = float(2.0 ** rng.uniform(-1, 1))
    c = float(2.0 ** rng.uniform(-1, 1))
    return "color", (b, c, float(rng.uniform(0.0, 2.0)))


UPLOAD_KINDS: dict[str, UploadKind] = {
    "crop": UploadKind(("crop_uniform",), lambda rng: ("crop_uniform", float(rng.uniform(0.3, 0.95)))),
    "resize": UploadKind(("resize",), lambda rng: ("resize", float(rng.uniform(0.3, 1.2)))),
    "color": UploadKind(("color",), _sample_color),
    "flip": UploadKind(("hflip",), lambda rng: ("hflip", None)),
    "turn": UploadKind(TURNS, lambda rng: (TURNS[int(rng.integers(4))], None)),
    "pad": UploadKind(("border",), lambda rng: ("border", float(rng.uniform(0.05, 0.3)))),  # 5-30 % of the side
    "rotate": UploadKind(("tilt",), lambda rng: ("tilt", float(rng.uniform(-30, 30)))),  # black corners kept
    "caption": UploadKind(("caption_bar",), lambda rng: ("caption_bar", float(rng.uniform(0.05, 0.2)))),
    "none": UploadKind(("none",), lambda rng: ("none", None)),
}
"""What ordinary uploads look like (calibration's benign subset), in the order calibration draws
from: kind -> the edits it may use and a sampler of one step."""

UPLOAD_CODECS = ("jpeg", "jpeg", "webp", "none")
"""The upload's encoder, drawn uniformly (JPEG twice as often as WebP or none)."""


def sample_upload_codec(rng: np.random.Generator) -> Step:
    """The last step of an upload: JPEG quality 30-95, WebP quality 40-95, or none."""
    codec = str(rng.choice(list(UPLOAD_CODECS)))
    if codec == "jpeg":
        return "jpeg", int(rng.integers(30, 96))
    if codec == "webp":
        return "webp", int(rng.integers(40, 96))
    return "none", None


FORWARDS: dict[str, Chain] = {
    "JPEG75": Chain([("jpeg", 75)]),
    "crop64%": Chain([("center_crop", 0.1), ("jpeg", 85)]),
    "half-size": Chain([("resize", 0.5), ("jpeg", 85)]),
}
"""How the demo forwards a stamped picture: label -> steps (none of them random)."""

TRAINING_COUNTERPARTS: dict[str, tuple[str, ...]] = {
    "rotate": ("rotate", "rotate_corners", "tilt"),
    "crop": ("crop", "crop_uniform", "center_crop"),
    "resize": ("resize",),
    "color": ("brightness", "contrast", "saturation", "hue", "color", "gamma"),
    "exposure": ("brightness",),
    "defocus": ("defocus",),
    "blur": ("gaussian_blur",),
    "perspective": ("perspective", "recapture"),
    "noise": ("noise",),
    "jpeg": ("jpeg", "webp", "messenger"),
    "d4": ("hflip", "vflip", "rot90", "rot180", "rot270"),
    "jitter": ("crop", "center_crop", "resize"),
    "affine": ("rotate_corners", "rotate_expand", "pad", "border", "stretch"),
    "collage": ("collage",),
    "occlude": ("stickers", "caption", "caption_bar"),
}
"""Training augmentation (``deepraft.training.augment.AUGMENTATIONS`` name) -> the benign edits it stands for
in differentiable form."""

TRAINING_ONLY: frozenset[str] = frozenset()
"""Training augmentations with no benign edit here (none at present)."""
