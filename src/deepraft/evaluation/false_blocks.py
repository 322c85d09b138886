"""``deepraft eval --clean-only``: false blocks. Clean pictures only (never stamped), under a
grid of everyday edits; per kind of picture (photo, screenshot, document, diagram, illustration,
...), how many samples score above each of the card's thresholds, and the upper bound of that
rate (one-sided Clopper-Pearson at 95 %), with the pictures that were flagged.

A platform blocks what scores above its threshold, so a clean picture over it is a message
stopped for nothing: this is the number to keep at or below the card's stated FPR for every kind
of picture people send, not only for photos.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepraft.core.data import sample_seed
from deepraft.core.fileio import atomic_write_bytes
from deepraft.core.imageio import ImageError, read_image
from deepraft.edits.grids import conditions
from deepraft.evaluation.calibrate import rates_by_kind
from deepraft.evaluation.kernel import files_scenery, grid_edits, measure, others_of

if TYPE_CHECKING:
    from deepraft.runtime.stamper import Stamper

FALSE_BLOCK_GRID: list[tuple[str, list]] = [
    ("none", [None]),
    ("jpeg", [75]),
    ("resize", [0.5]),
    ("crop", [0.5]),
    ("hflip", [None]),
    ("rotate_corners", [5]),
    ("screenshot", [None]),
]
"""What the false-block check does to each clean picture: as sent, re-compressed, at half size,
cropped anywhere, mirrored, slightly tilted, screenshotted in a chat."""


@dataclass
class CleanSettings:
    grid: list[tuple[str, list]] = field(default_factory=lambda: list(FALSE_BLOCK_GRID))
    variants: int = 1
    seed: int = 0


def _draw(seed: int, picture: int, edit: int, variant: int) -> int:
    return sample_seed(seed, picture, edit, variant)


def run_clean_eval(
    stamper: Stamper,
    sources: Sequence[tuple[Path, str]],
    out_dir: Path,
    settings: CleanSettings | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict[str, Any]:
    """Scan every (file, kind) of ``sources`` under the grid; write ``samples.csv``,
    ``summary.json`` and ``report.md`` under ``out_dir`` and return the summary. An unreadable
    file is reported in ``failed`` and the rest go on."""
    settings = settings or CleanSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    conds = conditions(settings.grid)
    rows: list[tuple[str, str, str, int, float]] = []
    failed: list[str] = []
    items = list(enumerate(sources))
    pool = [p for p, _ in sources]
    for i, (f, kind) in progress(items) if progress else items:
        try:
            pic = read_image(f, max_pixels=stamper.max_pixels)
        except ImageError as exc:
            failed.append(str(exc))
            continue
        draws = partial(_draw, settings.seed, i)
        edits = grid_edits(conds, files_scenery(others_of(pool, f)))
        for s in measure(stamper.copies.score_pictures, None, pic, edits, settings.variants, seed=draws):
            rows.append((Path(f).name, kind, s.edit, s.variant, s.score))
    if not rows:
        raise ValueError("eval --clean-only: no readable pictures")
    summary = summarise(rows, stamper.card.thresholds, stamper.card.default_fpr)
    summary.update(model=stamper.card.name, grid=[c.label for c in conds], variants=settings.variants)
    summary["failed"] = failed
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["picture", "kind", "edit", "variant", "score"])
    w.writerows(rows)
    atomic_write_bytes(out_dir / "samples.csv", buf.getvalue().encode())
    atomic_write_bytes(out_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    atomic_write_bytes(out_dir / "report.md", markdown(summary).encode())
    return summary


def summarise(
    rows: Sequence[tuple[str, str, str, int, float]], thresholds: dict[str, float], default_fpr: float
) -> dict[str, Any]:
    """Per kind: samples, rate above each threshold and its bound, the highest score; the pictures
    flagged at the default threshold (name, kind, edit, score), highest first. A model without
    that threshold (a training run, not calibrated) gets the scores alone: no picture counts as
    flagged (``pictures_flagged`` None)."""
    scores = [r[4] for r in rows]
    kinds = [r[1] for r in rows]
    default = thresholds.get(f"{default_fpr:g}")
    flagged = [
        {"picture": r[0], "kind": r[1], "edit": r[2], "score": round(r[4], 4)}
        for r in sorted(rows, key=lambda r: -r[4])
        if default is not None and r[4] > default
    ]
    per_kind = rates_by_kind(scores, kinds, thresholds)
    for kind, entry in per_kind.items():
        mine = [r for r in rows if r[1] == kind]
        entry["pictures"] = len({r[0] for r in mine})
        entry["pictures_flagged"] = None if default is None else len({r[0] for r in mine if r[4] > default})
        entry["highest_score"] = round(max(r[4] for r in mine), 4)
    return {
        "n_pictures": len({r[0] for r in rows}),
        "n_samples": len(rows),
        "thresholds": thresholds,
        "default_fpr": default_fpr,
        "kinds": per_kind,
        "flagged": flagged,
    }


def markdown(summary: dict[str, Any]) -> str:
    names = sorted(summary["thresholds"], key=float, reverse=True)
    head = "".join(f" FPR at {n} (upper bound) |" for n in names)
    lines = [
        f"# False blocks: model `{summary['model']}`",
        "",
        f"{summary['n_pictures']} clean pictures, {summary['n_samples']} samples (edits: "
        f"{', '.join(summary['grid'])}; {summary['variants']} variant(s)). Rates of clean samples above "
        "each card threshold, with the one-sided 95 % Clopper-Pearson upper bound."
        + ("" if names else " The model has no calibrated threshold (a training run): its scores only."),
        "",
        f"| kind | pictures | samples | pictures flagged | highest score |{head}",
        "|---|---|---|---|---|" + "---|" * len(names),
    ]
    for kind, e in summary["kinds"].items():
        at = e["at_threshold"]
        cells = "".join(f" {at[n]['fpr']:.2e} ({at[n]['fpr_upper_bound']:.1e}) |" for n in names)
        flagged = "-" if e["pictures_flagged"] is None else e["pictures_flagged"]
        lines.append(f"| {kind} | {e['pictures']} | {e['n']} | {flagged} | {e['highest_score']:.2f} |{cells}")
    if summary["flagged"]:
        lines += ["", f"Flagged at the default threshold (FPR {summary['default_fpr']:g}):", ""]
        lines += [f"- {d['picture']} ({d['kind']}, {d['edit']}): {d['score']:.2f}" for d in summary["flagged"][:50]]
    if summary["failed"]:
        lines += ["", "Unreadable:", "", *[f"- {m}" for m in summary["failed"]]]
    return "\n".join(lines) + "\n"
