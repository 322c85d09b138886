"""Reading and writing images with Pillow, the way a platform receives them.

* EXIF orientation is applied (and the orientation tag reset), so what is stamped is what a
  viewer shows.
* The colour channels are separated from the alpha channel: alpha is kept untouched.
* Grayscale, palette, CMYK, 1-bit and 16-bit/float images are converted to 8-bit RGB with a
  warning.
* ICC profile and EXIF travel to the output; the output format follows the extension.
* A configurable pixel limit guards against decompression bombs; empty, truncated and
  non-image files raise :class:`ImageError` with a one-line message naming the file.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepraft.core.fileio import (
    atomic_write_bytes,
)

WORK_MODES = ("square", "area")


def work_shape(height: int, width: int, size: int, mode: str = "square") -> tuple[int, int]:
    """(h, w) of the working copy of a ``height`` x ``width`` picture.

    ``square``: squashed to ``size`` x ``size`` (the first models). ``area``: the picture's
    aspect ratio kept and its area brought to ``size**2``, so the working copy's scale is tied
    to the picture's size, not to its frame's shape: a stretch, a crop or a border changes the
    scale the scanner sees by the square root of the area change, never the shape of the stamp."""
    if mode == "square":
        return size, size
    if mode != "area":
        raise ValueError(f"unknown working-copy mode {mode!r}; known: {', '.join(WORK_MODES)}")
    k = size / math.sqrt(max(1, height * width))
    return max(8, round(height * k)), max(8, round(width * k))


DEFAULT_MAX_PIXELS = 64_000_000
"""Largest image accepted by default (64 MP; deepraft is specified up to 50 MP): the one pixel
limit of the library, the command line and the service (each can be given another)."""

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
SAVE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}


class ImageError(ValueError):
    """An input that is not a usable image. ``str()`` is one line: 'FILE: problem'."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem

    def __reduce__(self) -> tuple[type[ImageError], tuple[str, str]]:  # picklable across DataLoader worker processes
        return (type(self), (self.source, self.problem))


@dataclass
class Picture:
    """A decoded image: 8-bit RGB pixels plus what must survive a round trip."""

    rgb: np.ndarray
    """(H, W, 3) uint8, C-contiguous; read-only when decoded (copy it before writing)."""
    alpha: np.ndarray | None = None
    """(H, W) uint8, untouched, or None."""
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None
    source: str = "<image>"
    notes: list[str] = field(default_factory=list)
    """Conversions that were made (also issued as warnings)."""

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    def with_rgb(self, rgb: np.ndarray) -> Picture:
        return Picture(
            rgb=rgb,
            alpha=self.alpha,
            icc_profile=self.icc_profile,
            exif=self.exif,
            format=self.format,
            source=self.source,
            notes=list(self.notes),
        )

    def to_pil(self) -> Image.Image:
        img = Image.fromarray(self.rgb, "RGB")
        if self.alpha is not None:
            img.putalpha(Image.fromarray(self.alpha, "L"))
        if self.icc_profile:
            img.info["icc_profile"] = self.icc_profile
        if self.exif:
            img.info["exif"] = self.exif
        return img


def _note(pic_notes: list[str], source: str, text: str, quiet: bool = False) -> None:
    pic_notes.append(text)
    if not quiet:
        warnings.warn(f"{source}: {text}", stacklevel=3)


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or (arr.dtype.kind in "iu" and arr.max(initial=0) > 255):
        arr = arr.astype(np.float64) / 257.0
    elif img.mode == "F" and arr.size and float(np.nanmax(arr)) <= 1.0:
        arr = arr.astype(np.float64) * 255.0
    return Image.fromarray(np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8), "L")


def picture_from_pil(
    img: Image.Image, source: str = "<image>", max_pixels: int | None = DEFAULT_MAX_PIXELS, quiet: bool = False
) -> Picture:
    """Decode an opened PIL image into a :class:`Picture` (see module docstring). ``quiet``: the
    conversions are only recorded in ``notes``, not issued as warnings (no warning filter
    needed, so safe in threads)."""
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(source, "image has no pixels")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageError(source, f"image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}")
    fmt = img.format
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(source, f"truncated or corrupt image data ({exc})") from exc
    icc = img.info.get("icc_profile") or None
    exif_obj = img.getexif()
    exif = exif_obj.tobytes() if len(exif_obj) else None
    notes: list[str] = []
    alpha = None
    mode = img.mode
    if mode == "P":
        has_alpha = "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        _note(notes, source, "palette image converted to RGB" + ("A" if has_alpha else ""), quiet)
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        alpha = np.asarray(img.getchannel("A")).copy()
        img = img.convert("RGB") if mode not in ("LA", "La") else img.getchannel("L")
        mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _to_8bit_gray(img)
        _note(
            notes, source, f"{'16-bit' if mode.startswith('I') else 'float'} image reduced to 8 bits per channel", quiet
        )
        mode = "L"
    if mode in ("L", "1"):
        img = img.convert("RGB")
        _note(notes, source, "grayscale image converted to RGB", quiet)
    elif mode == "CMYK":
        img = img.convert("RGB")
        if icc:
            icc = None
        _note(notes, source, "CMYK image converted to RGB (its CMYK colour profile is dropped)", quiet)
    elif mode != "RGB":
        img = img.convert("RGB")
        _note(notes, source, f"{mode} image converted to RGB", quiet)
    rgb = np.asarray(img)  # one copy out of Pillow; read-only (np.array would copy it again)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(source, f"unexpected pixel layout {rgb.shape} {rgb.dtype}")
    return Picture(rgb=rgb, alpha=alpha, icc_profile=icc, exif=exif, format=fmt, source=source, notes=notes)


def _bomb_error(name: str, exc: Exception, max_pixels: int | None) -> ImageError:
    """Our pixel limit in the message of Pillow's decompression-bomb refusal (Pillow refuses
    past twice its own limit while reading the header, before our check can run)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)):,} pixels, " if found else ""
    limit = f"the limit of {max_pixels:,}" if max_pixels is not None else "Pillow's safety limit"
    return ImageError(name, f"image is {size}over {limit} (refused as a possible decompression bomb)")


def open_image(
    src: str | os.PathLike[str] | bytes | BinaryIO,
    source: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Open an image lazily (header only), mapping every failure to :class:`ImageError`
    (``max_pixels``: the limit named when Pillow refuses a decompression bomb)."""
    if isinstance(src, (bytes, bytearray)):
        name = source or "<bytes>"
        if not src:
            raise ImageError(name, "empty file")
        fp: str | os.PathLike[str] | BinaryIO = io.BytesIO(src)
    elif isinstance(src, (str, os.PathLike)):
        name = source or str(src)
        path = Path(src)
        if not path.exists():
            raise ImageError(name, "no such file")
        if path.is_dir():
            raise ImageError(name, "is a directory")
        if path.stat().st_size == 0:
            raise ImageError(name, "empty file")
        fp = path
    else:
        name = source or str(getattr(src, "name", None) or "<stream>")
        fp = src
    try:
        return Image.open(fp)
    except UnidentifiedImageError as exc:
        raise ImageError(name, "not a recognised image format") from exc
    except Image.DecompressionBombError as exc:
        raise _bomb_error(name, exc, max_pixels) from exc
    except OSError as exc:
        raise ImageError(name, f"truncated or corrupt image data ({exc})") from exc


def read_image(
    src: str | os.PathLike[str] | bytes | BinaryIO,
    source: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quiet: bool = False,
) -> Picture:
    """Open and decode an image file, bytes or stream into a :class:`Picture` (``quiet``: see
    :func:`picture_from_pil`)."""
    name = source or (str(src) if isinstance(src, (str, os.PathLike)) else "<bytes>")
    img = open_image(src, name, max_pixels)
    try:
        return picture_from_pil(img, name, max_pixels, quiet)
    except Image.DecompressionBombError as exc:
        raise _bomb_error(name, exc, max_pixels) from exc
    finally:
        img.close()  # a file Pillow opened (a multi-frame GIF keeps it open) is closed here


def work_copy(rgb: np.ndarray, size: int, mode: str = "square") -> np.ndarray:
    """Resize (H,W,3) uint8 pixels to the working copy (``work_shape``: a ``size`` square, or
    the picture's aspect with ``size**2`` pixels): antialiased bilinear, with a box
    pre-reduction for large images (``reducing_gap=3``: fast, within a level or two of the
    exact resize)."""
    h, w = work_shape(rgb.shape[0], rgb.shape[1], size, mode)
    if (h, w) == rgb.shape[:2]:
        return rgb
    img = Image.fromarray(rgb)
    return np.asarray(img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0))


def work_copy_from_pil(
    img: Image.Image,
    size: int,
    mode: str = "square",
    source: str = "<image>",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The working copy of an opened PIL image without a full-resolution array copy: an 8-bit
    RGB image with no EXIF rotation is resized directly (the same pixels as :func:`work_copy`
    of its array); anything else goes through :func:`picture_from_pil` first."""
    w, h = img.size
    plain = img.mode == "RGB" and w >= 1 and h >= 1 and (max_pixels is None or w * h <= max_pixels)
    if plain and img.getexif().get(0x0112, 1) == 1:
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(source, f"truncated or corrupt image data ({exc})") from exc
        wh, ww = work_shape(h, w, size, mode)
        if (wh, ww) == (h, w):
            return np.asarray(img)
        return np.asarray(img.resize((ww, wh), Image.Resampling.BILINEAR, reducing_gap=3.0))
    return work_copy(picture_from_pil(img, source, max_pixels=max_pixels, quiet=True).rgb, size, mode)


def read_work_copy(
    src: str | os.PathLike[str] | bytes | BinaryIO,
    size: int,
    source: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    mode: str = "square",
    draft_factor: float = 1.5,
) -> np.ndarray:
    """The (h, w, 3) uint8 working copy of an image (:func:`work_copy`), decoded as cheaply as
    possible.

    JPEGs are decoded at a reduced scale (libjpeg's DCT scaling via ``Image.draft``) no smaller
    than ``draft_factor`` times the working copy on each side, so a 12 MP photo (4:3) costs a
    1/4-scale decode for a 591 x 443 copy (scores move by 0.17 at most from a full decode's on
    30 photos at 12 MP, stamped and clean: ``benchmarks/scan_decode.py``); a plain RGB
    picture is then resized straight from Pillow's buffer (:func:`work_copy_from_pil`);
    everything else (orientation, modes, the pixel limit) is as in :func:`read_image`. Alpha
    is ignored."""
    name = source or (str(src) if isinstance(src, (str, os.PathLike)) else "<bytes>")
    img = open_image(src, name, max_pixels)
    w, h = img.size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageError(name, f"image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}")
    if img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
        wh, ww = work_shape(h, w, size, mode)  # as stored: an EXIF turn transposes both alike
        img.draft("RGB", (math.ceil(draft_factor * ww), math.ceil(draft_factor * wh)))
    try:
        return work_copy_from_pil(img, size, mode, name, max_pixels=None)
    finally:
        img.close()


def format_for(path: str | os.PathLike[str]) -> str:
    ext = Path(path).suffix.lower()
    if ext not in SAVE_FORMATS:
        raise ImageError(
            str(path), f"unsupported output extension {ext or '(none)'!r}; use one of {', '.join(sorted(SAVE_FORMATS))}"
        )
    return SAVE_FORMATS[ext]


def encode_image(pic: Picture, fmt: str, quality: int = 95, dest: str = "<output>") -> bytes:
    """Encode a :class:`Picture` as ``fmt`` ('PNG', 'JPEG', 'WEBP', ...) with its ICC/EXIF."""
    fmt = fmt.upper()
    if pic.alpha is not None and fmt not in ALPHA_FORMATS:
        raise ImageError(dest, f"image has an alpha channel, which {fmt} cannot store; use .png or .webp")
    img = pic.to_pil()
    kwargs: dict[str, object] = {}
    if pic.icc_profile:
        kwargs["icc_profile"] = pic.icc_profile
    if pic.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kwargs["exif"] = pic.exif
    if fmt == "JPEG":
        kwargs.update(quality=int(quality), subsampling=0, optimize=True)
    elif fmt == "WEBP":
        kwargs.update(quality=int(quality), method=4)
    elif fmt == "PNG":
        kwargs.update(compress_level=6)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def reencode(img: Image.Image, fmt: str, **save_kwargs: object) -> Image.Image:
    """Save ``img`` as ``fmt`` in memory and decode it again (what a re-upload does)."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save_kwargs)
    out = Image.open(io.BytesIO(buf.getvalue()))
    out.load()
    return out


def save_image(pic: Picture, path: str | os.PathLike[str], quality: int = 95) -> None:
    """Save atomically, the format chosen by the extension (JPEG quality 95, 4:4:4)."""
    atomic_write_bytes(path, encode_image(pic, format_for(path), quality, dest=str(path)))


def is_hidden(path: Path, root: Path) -> bool:
    """Does any part of ``path`` below ``root`` start with a dot (a hidden file or folder)?"""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def image_files_in(root: Path, recursive: bool = True) -> list[Path]:
    """The image files under ``root`` (by extension), sorted; hidden files and everything in
    hidden folders are left out. The one folder walker (protect, scan, eval, training data)."""
    root = Path(root)
    pattern = "**/*" if recursive else "*"
    return sorted(
        f for f in root.glob(pattern) if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden(f, root)
    )


def iter_image_files(paths: list[Path], recursive: bool = True) -> list[tuple[Path, Path]]:
    """Expand files and folders into (file, path relative to the given root) pairs, sorted.
    Folders contribute their images (:func:`image_files_in`); files are taken as given."""
    out: list[tuple[Path, Path]] = []
    for p in paths:
        if p.is_dir():
            out += [(f, f.relative_to(p)) for f in image_files_in(p, recursive)]
        else:
            out.append((p, Path(p.name)))
    return out


def read_images(
    files: Iterable[Path],
    failed: list[str],
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Callable[[Iterable[Path]], Iterable[Path]] | None = None,
) -> Iterator[tuple[Path, Picture]]:
    """Decode ``files`` one by one (:func:`read_image`); the message of each unreadable one is
    appended to ``failed`` and the file skipped, so one bad file does not stop the rest."""
    for f in progress(files) if progress else files:
        try:
            yield f, read_image(f, max_pixels=max_pixels)
        except ImageError as exc:
            failed.append(str(exc))
