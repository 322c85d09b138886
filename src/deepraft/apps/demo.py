"""``deepraft demo``: the platform flow on a folder of photos, as one table.

Each photo is stamped ("sent only for you"), then "forwarded" the ways people do: saved and
re-compressed as JPEG, cropped, resized (:data:`deepraft.edits.benign.FORWARDS`: steps of the benign-edit
registry). The originals, the stamped copies and the forwarded
copies are all scanned; a platform would block every row marked STAMPED.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from rich.table import Table

from deepraft.core.data import find_images
from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.imageio import Picture, encode_image, picture_from_pil
from deepraft.core.measures import psnr_uint8
from deepraft.edits.benign import EDITS, FORWARDS

if TYPE_CHECKING:
    from deepraft.runtime.stamper import Stamper


def forward(img: Image.Image, label: str) -> Image.Image:
    """The stamped picture forwarded the way ``label`` (a key of :data:`FORWARDS`) says."""
    return EDITS["chain"](img, FORWARDS[label], np.random.default_rng(0))


def run_demo(
    stamper: Stamper, photos: Path, out: Path, progress: Callable[[Iterable], Iterable] | None = None
) -> tuple[Table, list[str]]:
    files = find_images(Path(photos), "folder")
    out = Path(out)
    thr = stamper.card.threshold()
    columns = ["original", "stamped", *FORWARDS]
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
    for f, pic in stamper.read_many(files, failures, progress):
        stamped = stamper.protect_pictures([pic])[0]
        stem = f.stem
        atomic_write_bytes(out / "stamped" / f"{stem}.png", encode_image(stamped, "PNG"))
        versions: list[Picture] = [pic, stamped]
        for label in FORWARDS:
            fwd = forward(Image.fromarray(stamped.rgb), label)
            slug = label.split()[0].lower()
            atomic_write_bytes(out / "forwarded" / f"{stem}.{slug}.jpg", encode_image(picture_from_pil(fwd), "JPEG"))
            versions.append(picture_from_pil(fwd))
        scores = stamper.scores(versions)
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
