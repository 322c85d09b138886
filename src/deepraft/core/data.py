"""Data-set folders (which files are the photos) and the deterministic seeds that address a
sample: plain functions shared by training, evaluation and the demo."""

from __future__ import annotations

import hashlib
from pathlib import Path

from deepraft.core.imageio import image_files_in


def find_images(root: Path, layout: str = "auto") -> list[Path]:
    """Image files of a data set folder.

    * ``folder``: every image below ``root`` (recursive; hidden files and folders skipped, as
      :func:`deepraft.core.imageio.image_files_in`);
    * ``mirflickr``: MIRFlickr-25k, ``im<N>.jpg`` files (the ``meta/`` folders are skipped);
    * ``metfaces``: MetFaces, the aligned PNGs in ``images/`` (``unprocessed/`` skipped);
    * ``auto``: MetFaces if ``images/`` holds PNGs, MIRFlickr if ``im1.jpg`` is present,
      otherwise ``folder``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data folder not found")
    if layout == "auto":
        if (root / "images").is_dir() and any((root / "images").glob("*.png")):
            layout = "metfaces"
        elif any(root.glob("**/im1.jpg")):
            layout = "mirflickr"
        else:
            layout = "folder"
    if layout == "metfaces":
        files = sorted((root / "images").glob("*.png"))
    elif layout == "mirflickr":
        files = sorted((f for f in root.glob("**/im*.jpg") if f.stem[2:].isdigit()), key=lambda f: int(f.stem[2:]))
    elif layout == "folder":
        files = image_files_in(root)
    else:
        raise ValueError(f"unknown data layout {layout!r}")
    if not files:
        raise FileNotFoundError(f"{root}: no images found (layout {layout})")
    return files


def sample_seed(seed: int, *parts: int) -> int:
    """A well-mixed 63-bit seed from a base seed and integer coordinates."""
    h = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1
