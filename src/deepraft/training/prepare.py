"""``deepraft prepare``: the paper's preprocessing (square images of a fixed size)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from deepraft.core.data import find_images
from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.imageio import ImageError, Picture, encode_image, read_image


@dataclass
class PrepareReport:
    written: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def square(img: Image.Image, size: int, mode: str = "crop") -> Image.Image:
    """``crop``: centre crop to a square, then resize; ``squash``: resize ignoring aspect."""
    if mode == "crop":
        w, h = img.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        return img.resize((size, size), Image.Resampling.LANCZOS, box=box)
    if mode == "squash":
        return img.resize((size, size), Image.Resampling.LANCZOS)
    raise ValueError(f"unknown mode {mode!r}")


def prepare_folder(
    src: Path,
    dst: Path,
    size: int = 400,
    mode: str = "crop",
    layout: str = "auto",
    progress: Callable[[Iterable], Iterable] | None = None,
) -> PrepareReport:
    """Write every image of ``src`` as a ``size`` x ``size`` PNG under ``dst`` (same relative
    paths). Never writes inside ``src``; a bad file is reported and the rest go on."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if dst == src or src in dst.parents:
        raise ValueError(f"{dst}: the output folder must not be inside the input folder {src}")
    report = PrepareReport()
    files = find_images(src, layout)
    for f in progress(files) if progress else files:
        out = (dst / f.relative_to(src)).with_suffix(".png")
        try:
            pic = read_image(f)
            img = square(Image.fromarray(pic.rgb), size, mode)
            atomic_write_bytes(out, encode_image(Picture(rgb=np.asarray(img)), "PNG", dest=str(out)))
            report.written.append(out)
        except ImageError as exc:
            report.failed.append(str(exc))
    return report
