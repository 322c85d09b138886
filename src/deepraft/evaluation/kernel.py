"""The measurement kernel: stamp a picture, apply each edit of a grid to the stamped and the
clean copy alike (the same random draws for both), and score every edited copy.

Every measurement of the stamp (``deepraft eval``, the card's headline check, ``deepraft demo``,
the forward check and the peers' benchmark) runs through :func:`measure`; what differs between
them is data: the grid of edits, the number of variants, how seeds are drawn, and what is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from deepraft.core.imageio import Picture, picture_from_pil
from deepraft.edits.grids import Condition, Scenery, generated_scenery

EditFn = Callable[[Image.Image, np.random.Generator], Image.Image]
"""An edit: (picture, random generator) -> edited picture."""

Scorer = Callable[[list[Picture]], list[float]]
"""What scores pictures: a stamper's ``copies.score_pictures``, or a peer method's detector."""

KINDS = ("stamped", "clean")


@dataclass(frozen=True)
class Sample:
    """The score of one edited copy: ``edit`` (the grid cell's label), its ``variant``, and which
    copy it was made from (``kind``: ``stamped`` or ``clean``)."""

    edit: str
    variant: int
    kind: str
    score: float


def grid_edits(conds: Sequence[Condition], scenery: Scenery | None = None) -> list[tuple[str, EditFn]]:
    """A grid of :class:`~deepraft.edits.grids.Condition` cells as (label, edit) pairs; scene
    edits draw their other pictures from ``scenery``."""

    def edit(c: Condition) -> EditFn:
        return lambda img, rng: c.apply(img, rng, scenery)

    return [(c.label, edit(c)) for c in conds]


SCENERY_PHOTOS = 64
"""At most this many other pictures of a set (those after a picture in the list, wrapping round)
for its scene edits, so what a worker is sent stays small on a large set."""


def others_of(files: Sequence[Path], f: Path) -> list[Path]:
    """The pictures a scene edit may put ``f`` among: up to :data:`SCENERY_PHOTOS` others of ``files``."""
    files = list(files)
    i = files.index(f)
    return [files[(i + k) % len(files)] for k in range(1, min(len(files), SCENERY_PHOTOS + 1))]


def files_scenery(files: Sequence[Path], cache_size: int = 4) -> Scenery:
    """A :data:`~deepraft.edits.grids.Scenery` drawing distinct pictures of ``files`` (with
    repeats only when there are fewer than asked for; generated ones when there are none), each
    cropped to the asked aspect ratio around its centre and resized to the asked size. The last
    ``cache_size`` pictures made are kept, so the stamped and the clean copy of an edit (same
    draws) decode them once. An unreadable file is skipped for a generated picture."""
    files = list(files)
    made: dict[tuple[Path, tuple[int, int]], Image.Image] = {}

    def fitted(f: Path, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
        key = (f, size)
        if key not in made:
            try:
                with Image.open(f) as im:
                    im.draft("RGB", size)
                    made[key] = ImageOps.fit(ImageOps.exif_transpose(im).convert("RGB"), size, Image.Resampling.BICUBIC)
            except (OSError, ValueError, Image.DecompressionBombError):
                return generated_scenery(1, size, rng)[0]
            while len(made) > cache_size:
                made.pop(next(iter(made)))
        return made[key]

    def draw(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[Image.Image]:
        if not files:
            return generated_scenery(n, size, rng)
        picks = rng.choice(len(files), size=n, replace=n > len(files))
        return [fitted(files[int(i)], size, rng) for i in picks]

    return draw


def measure(
    score: Scorer,
    stamped: Picture | None,
    clean: Picture,
    edits: Sequence[tuple[str, EditFn]],
    variants: int = 1,
    seed: Callable[[int, int], int] = lambda edit, variant: variant,
    view: Callable[[Image.Image, int, np.random.Generator], Image.Image] | None = None,
    keep: Callable[[str, int, str, Image.Image], None] | None = None,
) -> list[Sample]:
    """Scores of ``stamped`` and ``clean`` under every edit of ``edits`` and every variant.

    For edit ``e`` and variant ``v`` both copies get a generator seeded with ``seed(e, v)``, so
    the stamped and the clean copy are edited alike; ``view`` (if given) first turns the copy into
    variant ``v`` with that generator. ``keep`` sees every edited copy (label, variant, kind,
    picture) before it is scored. The copies of one edit are scored in one call. Without a
    ``stamped`` copy only the clean one is edited and scored (a false-block measurement)."""
    images = {"clean": Image.fromarray(clean.rgb)}
    if stamped is not None:
        images["stamped"] = Image.fromarray(stamped.rgb)
    kinds = [k for k in KINDS if k in images]
    out: list[Sample] = []
    for ei, (label, edit) in enumerate(edits):
        pics: list[Picture] = []
        meta: list[tuple[int, str]] = []
        for v in range(variants):
            for kind in kinds:
                rng = np.random.default_rng(seed(ei, v))
                img = view(images[kind], v, rng) if view is not None else images[kind]
                edited = edit(img, rng)
                if keep is not None:
                    keep(label, v, kind, edited)
                pics.append(picture_from_pil(edited.convert("RGB"), clean.source, max_pixels=None))
                meta.append((v, kind))
        out.extend(Sample(label, v, kind, float(s)) for (v, kind), s in zip(meta, score(pics)))
    return out


def by_edit(samples: Sequence[Sample]) -> dict[str, tuple[list[float], list[float]]]:
    """Stamped and clean scores of each edit, in the order the edits came."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for s in samples:
        out.setdefault(s.edit, ([], []))[0 if s.kind == "stamped" else 1].append(s.score)
    return out
