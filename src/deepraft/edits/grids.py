"""The evaluation's edit grid: which
benign edits of :mod:`deepraft.edits`, at which strengths, the evaluation applies to
full-resolution photos. The grid is data: a list of (edit name, strengths).

Besides the everyday edits of a re-upload (compression, a messenger's resize, colour and tone,
a phone screenshot of the chat) the grid holds what a forwarder does to get a picture through
a filter: mirrors, quarter turns, tilts by 5 to 45 degrees with or without their black corners,
crops anywhere in the frame down to a tenth of its area, stretches, letterbox borders, a
collage into a generated picture, the picture pasted into another photo of the set or in a
2 x 2 grid of them (scene edits: :data:`SCENE_EDITS`), stickers and captions, a camera
recapture, and chains of these (a ``chain`` edit whose strength is a :class:`Chain` of (edit,
strength) steps). Crop areas, angles and paste scales come in series, so the report can draw
TPR against each as a curve. An edit may appear twice: strengths added later come after the
first grid's cells (see the comment in :data:`GRID`).

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
    SCENE_EDITS,
    STICKER_COLOURS,
    Chain,
    Edit,
    Scenery,
    caption,
    chain,
    collage,
    collage_geometry,
    crop,
    generated_scenery,
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

ANGLES = [5, 10, 15, 20, 25, 30, 35, 40, 45]
"""Rotation angles of the grid (random sign; ``rotate_corners`` also draws the angle within +-20 %)."""

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
    # -- added with stamp v3's bars; kept after the first grid's cells, whose random draws
    # (seeded by a cell's place in the grid) thus stay those of earlier reports
    ("messenger", [None]),
    ("resize", [2.0, 1.5]),
    ("crop", [0.64, 0.36, 0.16, 0.1]),
    ("rotate", [a for a in ANGLES if a not in (5, 10, 15, 30, 45)]),
    ("gamma", [0.5, 0.7, 1.5, 2.0]),
    ("phone_screenshot", [None]),
    ("rotate_corners", [a for a in ANGLES if a not in (5, 10, 15, 30)]),
    ("paste", [0.7, 0.5, 0.35]),
    ("photo_grid", [None]),
    (
        "chain",
        [
            Chain([("crop", 0.5), ("messenger", None)]),
            Chain([("crop", 0.25), ("messenger", None)]),
            Chain([("crop", 0.1), ("messenger", None)]),
            Chain([("crop", 0.36), ("rotate", 7), ("messenger", None)]),
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

    def apply(self, img: Image.Image, rng: np.random.Generator, scenery: Scenery | None = None) -> Image.Image:
        """The edited picture; a scene edit (:data:`SCENE_EDITS`) takes its other pictures from
        ``scenery`` (generated ones when None)."""
        if self.edit in SCENE_EDITS:
            return SCENE_EDITS[self.edit](img, self.strength, rng, scenery or generated_scenery)
        return EDITS[self.edit](img, self.strength, rng)


def conditions(grid: list[tuple[str, list[Any]]]) -> list[Condition]:
    """Every (edit, strength) of ``grid``; raises on an edit the registries do not know, and on
    a chain step that is a chain or a scene edit (a chain's steps get no scenery)."""
    unknown = [a for a, _ in grid if a not in EDITS and a not in SCENE_EDITS]
    steps = [step for a, strengths in grid if a == "chain" for st in strengths for step, _ in st]
    if bad := [step for step in steps if step == "chain" or step in SCENE_EDITS]:
        raise ValueError(f"a chain cannot hold a chain or a scene edit: {bad}")
    unknown += [step for step in steps if step not in EDITS]
    if unknown:
        raise ValueError(f"unknown edit(s) in grid: {unknown}; known: {sorted(EDITS) + sorted(SCENE_EDITS)}")
    return [Condition(a, s) for a, strengths in grid for s in strengths]


__all__ = [
    "ANGLES",
    "EDITS",
    "EVAL_EDITS",
    "GRID",
    "PAD_FILLS",
    "QUICK_GRID",
    "SCENE_EDITS",
    "STICKER_COLOURS",
    "Chain",
    "Condition",
    "Edit",
    "Scenery",
    "caption",
    "chain",
    "collage",
    "collage_geometry",
    "conditions",
    "crop",
    "generated_scenery",
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
