"""What the held-out benchmark scripts share (forward_check, grating_reads, stamp_strength,
scan_registration): a command line that takes a model and a few validation photos, and an
atomic JSON output. Imported by those scripts from this folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepraft.core.fileio import atomic_write_text

VAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "photos" / "val"


def parser(doc: str | None, photos: int) -> argparse.ArgumentParser:
    """The arguments every held-out script takes: MODEL (a bundled name, a card folder or a
    training run), --data (default ../shared/data/photos/val), --photos, --out."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a bundled name, a card folder or a training run folder")
    ap.add_argument("--data", type=Path, default=VAL, help="held-out photos (default: ../shared/data/photos/val)")
    ap.add_argument("--photos", type=int, default=photos, help=f"how many photos (default {photos})")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write (default: print only)")
    return ap


def write_json(path: Path | None, result: dict, indent: int = 2) -> None:
    """Write ``result`` to ``path`` atomically (its folder made first); nothing when None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=indent) + "\n")
