"""Pictures that are not photographs, generated without limit: the clean negatives (and, stamped,
the positives) a scanner must see besides photos, because platforms receive them too.

Each picture is a pure function of ``(seed, index)``: :func:`generate` draws its kind and then
its content (layout, colours, text, sizes) from a generator seeded by both, so a training step or
a calibration sample can be made again exactly. Kinds follow ``shared/data/nonphoto``'s
manifest: ``screenshot`` (app and chat mock-ups), ``document`` (pages of text in many sizes and
fonts), ``diagram`` (charts, plots, schematics and line art), ``illustration`` (flat-colour
drawings, pixel art, memes: a picture with caption text) and ``other`` (tilings, fractals,
halftones). Pillow and NumPy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from deepraft.core.data import sample_seed

KINDS = ("screenshot", "document", "diagram", "illustration", "other")

WORDS = (
    "the of and to in is for on with as by at from this that be are was it an or settings file edit view help "
    "window open save close cancel apply message reply forward photo image share send today yesterday online "
    "theorem proof lemma figure table section result value data model input output error warning version"
).split()

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


@cache
def _font_files() -> tuple[str, ...]:
    """TrueType fonts installed on the machine (none is fine: Pillow's own font is used)."""
    out: list[str] = []
    for d in FONT_DIRS:
        if d.is_dir():
            out += sorted(str(p) for p in d.rglob("*.ttf"))
    return tuple(out)


def _font(rng: np.random.Generator, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    files = _font_files()
    if files and rng.random() < 0.8:
        try:
            return ImageFont.truetype(files[int(rng.integers(len(files)))], size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return r, g, b


def _text(rng: np.random.Generator, words: int) -> str:
    return " ".join(WORDS[int(i)] for i in rng.integers(len(WORDS), size=max(1, words)))


def _size(rng: np.random.Generator, lo: int = 320, hi: int = 1100) -> tuple[int, int]:
    w = int(rng.integers(lo, hi))
    return w, int(w * rng.uniform(0.55, 1.8))


def document(rng: np.random.Generator) -> Image.Image:
    """A page of text: paragraphs, a heading, sometimes a rule, a table or a formula-like line."""
    w, h = _size(rng, 400, 1000)
    h = max(h, int(w * 1.2))
    paper = (255, 255, 255) if rng.random() < 0.8 else _colour(rng, 225, 256)
    im = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(im)
    margin = int(w * rng.uniform(0.06, 0.14))
    size = int(rng.integers(9, 24))
    font = _font(rng, size)
    y = margin
    d.text((margin, y), _text(rng, 4).title(), fill=(0, 0, 0), font=_font(rng, int(size * 1.6)))
    y += int(size * 3)
    ink = (0, 0, 0) if rng.random() < 0.85 else _colour(rng, 0, 90)
    while y < h - margin - size:
        if rng.random() < 0.1:
            d.line((margin, y, w - margin, y), fill=ink, width=1)
            y += size
            continue
        for _ in range(int(rng.integers(2, 8))):
            line = _text(rng, int((w - 2 * margin) / (size * 3.2)))
            d.text((margin, y), line, fill=ink, font=font)
            y += int(size * rng.uniform(1.2, 1.6))
            if y > h - margin - size:
                break
        y += size
    return im


def screenshot(rng: np.random.Generator) -> Image.Image:
    """An app window or a chat: a title bar, a side bar or message bubbles, buttons, text."""
    w, h = _size(rng, 360, 1200)
    dark = rng.random() < 0.3
    bg = _colour(rng, 20, 60) if dark else _colour(rng, 225, 256)
    fg = (230, 230, 230) if dark else (20, 20, 20)
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    bar = int(rng.integers(24, 60))
    d.rectangle((0, 0, w, bar), fill=_colour(rng, 40, 220))
    font = _font(rng, int(rng.integers(10, 20)))
    d.text((12, bar // 4), _text(rng, 3).title(), fill=(255, 255, 255), font=font)
    if rng.random() < 0.5:  # a chat: alternating bubbles
        y = bar + 10
        while y < h - 60:
            mine = rng.random() < 0.5
            bw = int(w * rng.uniform(0.3, 0.7))
            bh = int(rng.integers(30, 90))
            x0 = w - bw - 12 if mine else 12
            d.rounded_rectangle((x0, y, x0 + bw, y + bh), radius=12, fill=_colour(rng, 120, 255))
            d.text((x0 + 10, y + 8), _text(rng, int(bw / 40)), fill=(0, 0, 0), font=font)
            y += bh + int(rng.integers(6, 20))
        d.rectangle((0, h - 50, w, h), fill=_colour(rng, 200, 256))
    else:  # a window: side bar, list rows, buttons
        side = int(w * rng.uniform(0.15, 0.3))
        d.rectangle((0, bar, side, h), fill=_colour(rng, 30, 90) if dark else _colour(rng, 200, 240))
        for y in range(bar + 12, h - 20, int(rng.integers(22, 40))):
            d.text((10, y), _text(rng, 2), fill=fg, font=font)
            d.text((side + 14, y), _text(rng, int((w - side) / 60)), fill=fg, font=font)
            if rng.random() < 0.2:
                d.rectangle((side + 8, y - 3, w - 8, y + 18), outline=_colour(rng), width=1)
        for i in range(int(rng.integers(1, 4))):
            x = w - 110 * (i + 1)
            d.rounded_rectangle((x, h - 44, x + 96, h - 14), radius=6, fill=_colour(rng, 60, 220))
    return im


def diagram(rng: np.random.Generator) -> Image.Image:
    """A chart (lines, bars, scatter) with axes and grid, or a schematic of boxes and wires."""
    w, h = _size(rng, 360, 1000)
    im = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(im)
    font = _font(rng, int(rng.integers(9, 16)))
    m = int(min(w, h) * 0.12)
    if rng.random() < 0.7:
        d.rectangle((m, m, w - m, h - m), outline=(0, 0, 0), width=1)
        if rng.random() < 0.6:
            for k in range(1, 10):
                x = m + k * (w - 2 * m) // 10
                y = m + k * (h - 2 * m) // 10
                d.line((x, m, x, h - m), fill=(220, 220, 220))
                d.line((m, y, w - m, y), fill=(220, 220, 220))
        style = rng.integers(3)
        for _ in range(int(rng.integers(1, 4))):
            colour = _colour(rng, 0, 200)
            n = int(rng.integers(8, 200))
            xs = np.linspace(m, w - m, n)
            ys = h / 2 + np.cumsum(rng.normal(0, (h - 2 * m) / 30, n))
            ys = np.clip(ys, m, h - m)
            if style == 0:
                d.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=int(rng.integers(1, 4)))
            elif style == 1:
                bw = max(2, (w - 2 * m) // n - 2)
                for x, y in zip(xs, ys):
                    d.rectangle((x, y, x + bw, h - m), fill=colour)
            else:
                for x, y in zip(xs, ys):
                    d.ellipse((x - 3, y - 3, x + 3, y + 3), outline=colour)
        for k in range(6):
            d.text((m + k * (w - 2 * m) // 5, h - m + 4), f"{k * 10}", fill=(0, 0, 0), font=font)
    else:
        boxes = []
        for _ in range(int(rng.integers(4, 12))):
            x, y = int(rng.integers(m, w - 2 * m)), int(rng.integers(m, h - 2 * m))
            bw, bh = int(rng.integers(40, 140)), int(rng.integers(24, 60))
            d.rectangle((x, y, x + bw, y + bh), outline=(0, 0, 0), width=int(rng.integers(1, 3)))
            d.text((x + 4, y + 4), _text(rng, 1), fill=(0, 0, 0), font=font)
            boxes.append((x + bw // 2, y + bh // 2))
        for a, b in zip(boxes, boxes[1:]):
            d.line((a[0], a[1], b[0], a[1], b[0], b[1]), fill=(0, 0, 0), width=1)
    return im


def illustration(rng: np.random.Generator) -> Image.Image:
    """Flat-colour shapes, pixel art, or a meme (a picture with caption text)."""
    w, h = _size(rng, 256, 900)
    style = rng.integers(3)
    if style == 1:  # pixel art: a small random sprite scaled up with nearest neighbour
        n = int(rng.integers(8, 33))
        palette = np.array([_colour(rng) for _ in range(int(rng.integers(3, 9)))], np.uint8)
        sprite = palette[rng.integers(len(palette), size=(n, n))]
        sprite[:, n // 2 :] = sprite[:, : n - n // 2][:, ::-1]  # symmetric, as sprites often are
        return Image.fromarray(sprite).resize((w, w), Image.Resampling.NEAREST)
    im = Image.new("RGB", (w, h), _colour(rng, 120, 256))
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(5, 30))):
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
        shape = rng.integers(3)
        fill, outline = _colour(rng), (0, 0, 0) if rng.random() < 0.5 else None
        if shape == 0:
            d.ellipse((x0, y0, x1, y1), fill=fill, outline=outline, width=2)
        elif shape == 1:
            d.rectangle((x0, y0, x1, y1), fill=fill, outline=outline, width=2)
        else:
            d.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=fill, outline=outline)
    if style == 2:  # a meme: impact-like caption, white with a black outline, top and bottom
        font = _font(rng, max(14, w // 12))
        for y, words in ((h // 20, 3), (h - h // 6, 4)):
            d.text(
                (w // 20, y),
                _text(rng, words).upper(),
                fill=(255, 255, 255),
                font=font,
                stroke_width=2,
                stroke_fill=(0, 0, 0),
            )
    return im


def other(rng: np.random.Generator) -> Image.Image:
    """A tiling, a fractal or a halftone: fine, regular structure a scanner must not take for a stamp."""
    w, h = _size(rng, 256, 900)
    style = rng.integers(3)
    if style == 0:  # tiling: a small random tile repeated, sometimes sharp-edged checks
        t = int(rng.integers(4, 48))
        tile = rng.integers(0, 256, (t, t, 3), dtype=np.uint8)
        if rng.random() < 0.5:
            tile[:] = np.array(_colour(rng), np.uint8)
            tile[: t // 2, : t // 2] = np.array(_colour(rng), np.uint8)
            tile[t // 2 :, t // 2 :] = np.array(_colour(rng), np.uint8)
        reps = (h // t + 1, w // t + 1, 1)
        return Image.fromarray(np.tile(tile, reps)[:h, :w])
    if style == 1:  # Mandelbrot / Julia escape times, coloured
        cx, cy = rng.uniform(-1.5, 0.3), rng.uniform(-0.8, 0.8)
        scale = 10 ** rng.uniform(-2.5, 0.3)
        ys, xs = np.mgrid[0:h, 0:w]
        z = (cx + (xs - w / 2) * scale / w) + 1j * (cy + (ys - h / 2) * scale / w)
        julia = rng.random() < 0.5
        c = complex(rng.uniform(-0.8, 0.4), rng.uniform(-0.8, 0.8)) if julia else z
        count = np.zeros(z.shape, np.int32)
        for _ in range(60):
            z = np.where(np.abs(z) <= 2, z * z + c, z)
            count += np.abs(z) <= 2
        phase = rng.uniform(0, 2 * math.pi, 3)
        rgb = 127.5 * (1 + np.sin(count[..., None] * 0.3 + phase))
        return Image.fromarray(rgb.astype(np.uint8))
    # halftone: a smooth picture printed as a grid of dots
    period = int(rng.integers(4, 12))
    base = Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    level = np.asarray(base.filter(ImageFilter.GaussianBlur(8)), np.float32) / 255
    ys, xs = np.mgrid[0:h, 0:w]
    dist = np.hypot((xs % period) - period / 2, (ys % period) - period / 2) / (period / 2)
    ink = dist < np.sqrt(1 - level)
    out = np.where(ink[..., None], np.array(_colour(rng, 0, 80)), np.array(_colour(rng, 200, 256)))
    return Image.fromarray(out.astype(np.uint8))


MAKERS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "screenshot": screenshot,
    "document": document,
    "diagram": diagram,
    "illustration": illustration,
    "other": other,
}


def generate(seed: int, index: int, kind: str | None = None) -> tuple[str, Image.Image]:
    """Non-photo number ``index`` of the stream ``seed``: its kind (``kind``, or drawn evenly)
    and the RGB picture."""
    rng = np.random.default_rng(sample_seed(seed, index, 0x6E6F6E))
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    if kind not in MAKERS:
        raise ValueError(f"unknown non-photo kind {kind!r}; known: {', '.join(KINDS)}")
    return kind, MAKERS[kind](rng).convert("RGB")
