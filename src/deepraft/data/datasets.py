"""Training photos: discovery of folder layouts and deterministic random crops.

A sample is addressed by a key ``(step, slot)``; its file and crop are drawn from a generator
seeded by ``(seed, step, slot)``. The same key always gives the same crop, whichever worker
or process reads it, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ..imageio import ImageError, image_files_in, read_image


def find_images(root: Path, layout: str = "auto") -> list[Path]:
    """Image files of a data set folder.

    * ``folder``: every image below ``root`` (recursive; hidden files and folders skipped, as
      :func:`deepraft.imageio.image_files_in`);
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


class PhotoCrops(Dataset):
    """Random resized square crops of photos, as uint8 (3, S, S) tensors.

    Each photo is decoded once (downscaled so its longer side is at most ``max_side``) and
    cached in the reading process. Files that cannot be decoded are reported and skipped.
    A ``fine_fraction`` of the crops come from the photos at ``fine_side`` instead (twice
    ``max_side`` when 0): finer detail than the working copy has, as a scanner that also reads a
    copy at twice the working size sees every picture.
    """

    def __init__(
        self,
        files: list[Path],
        image_size: int,
        min_crop_area: float = 0.25,
        max_side: int = 512,
        seed: int = 0,
        fine_fraction: float = 0.0,
        fine_side: int = 0,
    ) -> None:
        if not files:
            raise ValueError("no training images")
        if not 0.0 <= fine_fraction <= 1.0:
            raise ValueError(f"fine_fraction must be in [0, 1], got {fine_fraction}")
        self.files = list(files)
        self.image_size = image_size
        self.min_crop_area = min_crop_area
        self.max_side = max_side
        self.seed = seed
        self.fine_fraction = float(fine_fraction)
        self.fine_side = int(fine_side) or 2 * max_side
        self._cache: dict[tuple[int, int], Image.Image | None] = {}

    def __len__(self) -> int:
        return len(self.files)

    def _photo(self, index: int, side: int) -> Image.Image | None:
        if (index, side) not in self._cache:
            try:
                pic = read_image(self.files[index])
                img = Image.fromarray(pic.rgb)
                if max(img.size) > side:
                    img.thumbnail((side, side), Image.Resampling.LANCZOS)
                self._cache[index, side] = img
            except ImageError as exc:
                warnings.warn(f"skipping training image: {exc}", stacklevel=2)
                self._cache[index, side] = None
        return self._cache[index, side]

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        step, slot = key
        rng = np.random.default_rng(sample_seed(self.seed, step, slot))
        side = self.max_side
        if self.fine_fraction > 0 and rng.random() < self.fine_fraction:  # drawn only then: same crops without it
            side = self.fine_side
        for _ in range(20):
            img = self._photo(int(rng.integers(len(self.files))), side)
            if img is not None:
                break
        else:
            raise RuntimeError("could not decode any training image")
        w, h = img.size
        area = rng.uniform(self.min_crop_area, 1.0) * w * h
        aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
        cw = int(round(min(w, np.sqrt(area * aspect))))
        ch = int(round(min(h, np.sqrt(area / aspect))))
        x0 = int(rng.integers(0, w - cw + 1))
        y0 = int(rng.integers(0, h - ch + 1))
        crop = img.resize(
            (self.image_size, self.image_size),
            Image.Resampling.BILINEAR,
            box=(x0, y0, x0 + cw, y0 + ch),
            reducing_gap=None,
        )
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1)


class StepBatches(Sampler[list[tuple[int, int]]]):
    """Yields, for steps ``start..stop-1``, the keys of one rank's share of the batch."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0) -> None:
        self.start, self.stop, self.batch_size, self.rank = start, stop, batch_size, rank

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        for step in range(self.start, self.stop):
            base = self.rank * self.batch_size
            yield [(step, base + i) for i in range(self.batch_size)]
