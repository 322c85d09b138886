"""Training photos: discovery of folder layouts and deterministic random crops.

A sample is addressed by a key ``(step, slot)``; its file and crop are drawn from a generator
seeded by ``(seed, step, slot)``. The same key always gives the same crop, whichever worker
or process reads it, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from deepraft.core.data import sample_seed
from deepraft.core.imageio import ImageError, read_image


class PhotoCrops(Dataset):
    """Random resized square crops of photos, as uint8 (3, S, S) tensors.

    Each photo is decoded once (downscaled so its longer side is at most ``max_side``) and
    cached in the reading process. Files that cannot be decoded are reported and skipped.
    ``others`` (pictures that are not photos) give a ``other_fraction`` of the crops, and
    generated non-photos (:func:`deepraft.training.nonphoto.generate`) a ``synthetic_fraction``;
    with neither, the crops are exactly those of the photos alone.
    """

    def __init__(
        self,
        files: list[Path],
        image_size: int,
        min_crop_area: float = 0.25,
        max_side: int = 512,
        seed: int = 0,
        others: list[Path] | None = None,
        other_fraction: float = 0.0,
        synthetic_fraction: float = 0.0,
    ) -> None:
        if not files:
            raise ValueError("no training images")
        for name, v in (("other_fraction", other_fraction), ("synthetic_fraction", synthetic_fraction)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if other_fraction + synthetic_fraction > 1.0:
            raise ValueError("other_fraction + synthetic_fraction must be at most 1")
        if other_fraction > 0 and not others:
            raise ValueError("other_fraction > 0 needs other pictures (deepraft train --nonphoto DIR)")
        self.pools = [list(files), list(others or [])]
        self.other_fraction, self.synthetic_fraction = float(other_fraction), float(synthetic_fraction)
        self.files = self.pools[0]
        self.image_size = image_size
        self.min_crop_area = min_crop_area
        self.max_side = max_side
        self.seed = seed
        self._cache: dict[tuple[int, int], Image.Image | None] = {}
        """(pool, index) -> the decoded, downscaled picture (None: it could not be decoded)."""

    def __len__(self) -> int:
        return len(self.files)

    def _photo(self, pool: int, index: int) -> Image.Image | None:
        if (pool, index) not in self._cache:
            try:
                self._cache[pool, index] = self._downscaled(Image.fromarray(read_image(self.pools[pool][index]).rgb))
            except ImageError as exc:
                warnings.warn(f"skipping training image: {exc}", stacklevel=2)
                self._cache[pool, index] = None
        return self._cache[pool, index]

    def _downscaled(self, img: Image.Image) -> Image.Image:
        if max(img.size) > self.max_side:
            img.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        return img

    def _source(self, rng: np.random.Generator, step: int, slot: int) -> Image.Image:
        """The picture a crop is taken from: a photo, another picture or a generated one. The
        extra draw is made only when there are other sources, so photo-only runs replay."""
        pool = 0
        if self.other_fraction > 0 or self.synthetic_fraction > 0:
            u = rng.random()
            if u < self.synthetic_fraction:
                from deepraft.training.nonphoto import generate

                return self._downscaled(generate(sample_seed(self.seed, step, slot), 0)[1])
            if u < self.synthetic_fraction + self.other_fraction:
                pool = 1
        files = self.pools[pool]
        for _ in range(20):
            img = self._photo(pool, int(rng.integers(len(files))))
            if img is not None:
                return img
        raise RuntimeError("could not decode any training image")

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        step, slot = key
        rng = np.random.default_rng(sample_seed(self.seed, step, slot))
        img = self._source(rng, step, slot)
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
