"""``deepraft demo``: the platform flow on a folder of photos, as one table.

Each photo is stamped ("sent only for you"), then "forwarded" the ways people do: saved and
re-compressed as JPEG, cropped, resized (:data:`deepraft.edits.benign.FORWARDS`: steps of the benign-edit
registry). The originals, the stamped copies and the forwarded
copies are all scanned; a platform would block every row marked STAMPED.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from rich.table import Table

from deepraft.core.data import find_images
from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.imageio import encode_image, picture_from_pil, read_images
from deepraft.core.measures import psnr_uint8
from deepraft.edits.benign import EDITS, FORWARDS
from deepraft.evaluation.kernel import EditFn, by_edit, measure

if TYPE_CHECKING:
    from deepraft.runtime.stamper import Stamper


def forward(img: Image.Image, label: str) -> Image.Image:
    """The stamped picture forwarded the way ``label`` (a key of :data:`FORWARDS`) says."""
    return EDITS["chain"](img, FORWARDS[label], np.random.default_rng(0))


def _forwarded(img: Image.Image, rng: np.random.Generator, label: str) -> Image.Image:
    return forward(img, label)


def run_demo(
    stamper: Stamper, photos: Path, out: Path, progress: Callable[[Iterable], Iterable] | None = None
) -> tuple[Table, list[str]]:
    files = find_images(Path(photos), "folder")
    out = Path(out)
    thr = stamper.card.threshold()
    columns = ["original", "stamped", *FORWARDS]
    edits: list[tuple[str, EditFn]] = [("none", lambda img, rng: img)]
    edits += [(label, partial(_forwarded, label=label)) for label in FORWARDS]
    table = Table(
        title=f"deepraft demo: model {stamper.card.name!r}, threshold {thr:.2f} "
        f"(FPR {stamper.card.default_fpr:g}); cells: decision and score",
        caption="forwarded copies: JPEG q75 / crop to 64% + JPEG / half size + JPEG",
    )
    table.add_column("photo", no_wrap=True, max_width=20, overflow="ellipsis")
    table.add_column("size", no_wrap=True)
    table.add_column("PSNR", no_wrap=True)
    for c in columns:
        table.add_column(c, no_wrap=True)
    hits = dict.fromkeys(columns, 0)
    failures: list[str] = []
    n = 0
    for f, pic in read_images(files, failures, stamper.max_pixels, progress):
        stamped = stamper.protect(pic)
        stem = f.stem
        atomic_write_bytes(out / "stamped" / f"{stem}.png", encode_image(stamped, "PNG"))

        def keep(label: str, v: int, kind: str, img: Image.Image, stem: str = stem) -> None:
            if kind == "stamped" and label in FORWARDS:
                slug = label.split()[0].lower()
                atomic_write_bytes(
                    out / "forwarded" / f"{stem}.{slug}.jpg", encode_image(picture_from_pil(img), "JPEG")
                )

        by = by_edit(measure(stamper.copies.score_pictures, stamped, pic, edits, keep=keep))
        scores = [by["none"][1][0], by["none"][0][0], *(by[label][0][0] for label in FORWARDS)]
        cells = []
        for col, s in zip(columns, scores):
            caught = s > thr
            hits[col] += caught
            cells.append(f"[bold red]BLOCK[/bold red] {s:.0f}" if caught else f"ok {s:.0f}")
        table.add_row(
            f.stem.split("__")[-1], f"{pic.size[0]}x{pic.size[1]}", f"{psnr_uint8(stamped.rgb, pic.rgb):.1f}", *cells
        )
        n += 1
    if n:
        table.add_section()
        table.add_row("blocked", f"{n} photos", "", *[f"{hits[c]}/{n}" for c in columns])
    return table, failures
