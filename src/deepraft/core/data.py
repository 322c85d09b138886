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


MANIFEST = "MANIFEST.tsv"
"""A data folder's manifest: one row per file, tab-separated, with at least ``file``, ``kind``
and ``package`` columns (``shared/data/nonphoto`` has one)."""

SPLITS = ("train", "val", "test")
SPLIT_CYCLE = ("test", "train", "val", "train")
"""How packages are dealt to the splits, largest first within each kind: half to training, a
quarter each to calibration (val) and to the held-out test, the largest to test."""


def read_manifest(folder: Path) -> list[dict[str, str]]:
    """The rows of ``folder/MANIFEST.tsv`` (FileNotFoundError naming it when there is none)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest (a {MANIFEST} with file, kind and package columns)")
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    missing = {"file", "kind", "package"} - set(header)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]


def package_splits(rows: list[dict[str, str]]) -> dict[str, str]:
    """package -> split: each package goes whole to one split (no package on both sides of a
    decision). Packages are grouped by the kind most of their files have, and within a group
    dealt by :data:`SPLIT_CYCLE` from the largest down (ties by name), so that every kind with
    two or more packages has one in the test split."""
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        kinds = counts.setdefault(r["package"], {})
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    groups: dict[str, list[str]] = {}
    for package, kinds in counts.items():
        main = max(sorted(kinds), key=lambda k: kinds[k])
        groups.setdefault(main, []).append(package)
    out: dict[str, str] = {}
    for packages in groups.values():
        ordered = sorted(packages, key=lambda p: (-sum(counts[p].values()), p))
        for i, p in enumerate(ordered):
            out[p] = SPLIT_CYCLE[i % len(SPLIT_CYCLE)]
    return out


def split_files(folder: Path, split: str) -> list[tuple[Path, str]]:
    """(path, kind) of the files of ``folder``'s manifest whose package falls in ``split``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    rows = read_manifest(folder)
    splits = package_splits(rows)
    return [(Path(folder) / r["file"], r["kind"]) for r in rows if splits[r["package"]] == split]
