"""The evaluation's edit grid: which
benign edits of :mod:`deepraft.edits`, at which strengths, the evaluation applies to
full-resolution photos. The grid is data: a list of (edit name, strengths).

Besides the everyday edits of a re-upload (compression, resizing, colour) the grid holds what
a forwarder does to get a picture through a filter: mirrors, quarter turns, tilts with or
without their black corners, crops anywhere in the frame, stretches, letterbox borders, a
collage into an unrelated picture, stickers and captions, a camera recapture, and chains of
two of these (a ``chain`` edit whose strength is a :class:`Chain` of (edit, strength) steps).

The edits themselves live in :mod:`deepraft.edits.benign`; training's differentiable augmentations
are :mod:`deepraft.training.augment`, adversarial attacks :mod:`deepraft.evaluation.adversaries`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from deepraft.edits.benign import (
    EDITS,
    PAD_FILLS,
    STICKER_COLOURS,
    Chain,
    Edit,
    caption,
    chain,
    collage,
    collage_geometry,
    crop,
    keystone,
    natural_background,
    pad,
    pad_geometry,
    perspective_coeffs,
    pink_noise,
    recapture,
    rotate,
    rotate_corners,
    rotate_expand,
    stickers,
    stretch,
)

EVAL_EDITS = EDITS
"""The evaluation's edits: the benign-edit registry ."""

GRID: list[tuple[str, list[Any]]] = [
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
    ("vflip", [None]),
    ("rot90", [None]),
    ("rot180", [None]),
    ("rot270", [None]),
    ("rotate_corners", [5, 10, 15, 30]),
    ("rotate_expand", [5, 15, 30]),
    ("stretch", [0.1, 0.2]),
    ("pad", [0.1, 0.2, 0.3]),
    ("collage", [0.5]),
    ("stickers", [0.15]),
    ("caption", [0.15]),
    ("recapture", [1.0]),
    (
        "chain",
        [
            Chain([("hflip", None), ("pad", 0.2)]),
            Chain([("rotate_corners", 10), ("crop", 0.5)]),
            Chain([("collage", 0.5), ("jpeg", 70)]),
            Chain([("recapture", 1.0), ("hflip", None)]),
            Chain([("rot90", None), ("jpeg", 70)]),
            Chain([("stickers", 0.15), ("resize", 0.5)]),
        ],
    ),
]
"""The full grid (edit, strengths)."""

QUICK_GRID: list[tuple[str, list[Any]]] = [
    ("none", [None]),
    ("jpeg", [50]),
    ("resize", [0.5]),
    ("crop", [0.5]),
    ("rotate", [10]),
    ("gaussian_blur", [2]),
    ("brightness", [1.5]),
    ("combined", [None]),
    ("hflip", [None]),
    ("rot90", [None]),
    ("pad", [0.2]),
    ("collage", [0.5]),
]
"""A few representative edits for ``--quick``."""


@dataclass(frozen=True)
class Condition:
    """One cell of the grid: an edit (``edit``, a name of :data:`EDITS`) at one strength."""

    edit: str
    strength: object

    @property
    def label(self) -> str:
        return self.edit if self.strength is None else f"{self.edit} {self.strength}"

    def apply(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return EDITS[self.edit](img, self.strength, rng)


def conditions(grid: list[tuple[str, list[Any]]]) -> list[Condition]:
    """Every (edit, strength) of ``grid``; raises on an edit the registry does not know (also
    inside chains)."""
    unknown = [a for a, _ in grid if a not in EDITS]
    unknown += [
        step
        for a, strengths in grid
        if a == "chain"
        for st in strengths
        for step, _ in st
        if step not in EDITS or step == "chain"
    ]
    if unknown:
        raise ValueError(f"unknown edit(s) in grid: {unknown}; known: {sorted(EDITS)}")
    return [Condition(a, s) for a, strengths in grid for s in strengths]


__all__ = [
    "EDITS",
    "EVAL_EDITS",
    "GRID",
    "PAD_FILLS",
    "QUICK_GRID",
    "STICKER_COLOURS",
    "Chain",
    "Condition",
    "Edit",
    "caption",
    "chain",
    "collage",
    "collage_geometry",
    "conditions",
    "crop",
    "keystone",
    "natural_background",
    "pad",
    "pad_geometry",
    "perspective_coeffs",
    "pink_noise",
    "recapture",
    "rotate",
    "rotate_corners",
    "rotate_expand",
    "stickers",
    "stretch",
]
