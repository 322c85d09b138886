"""PNG plots and the Markdown report of an evaluation folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from deepraft.evaluation.metrics import roc_curve
from deepraft.evaluation.plotting import pyplot as _plt


def plot_roc(out_dir: Path, labels: list[str] | None = None) -> Path:
    """ROC curves (log FPR axis) of the chosen conditions from ``samples.csv``."""
    plt = _plt()
    scores: dict[str, dict[str, list[float]]] = {}
    with (out_dir / "samples.csv").open() as fh:
        for r in csv.DictReader(fh):
            label = r["edit"] if not r["strength"] else f"{r['edit']} {r['strength']}"
            scores.setdefault(label, {"stamped": [], "clean": []})[r["kind"]].append(float(r["score"]))
    labels = [lab for lab in (labels or list(scores)) if lab in scores]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for lab in labels:
        fpr, tpr = roc_curve(np.array(scores[lab]["stamped"]), np.array(scores[lab]["clean"]))
        ax.plot(np.maximum(fpr, 1e-4), tpr, label=lab, lw=1.3)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.axvline(1e-3, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("false-positive rate (clean photos)")
    ax.set_ylabel("true-positive rate (stamped photos)")
    ax.set_title("ROC per edit")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = out_dir / "roc.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_tpr_vs_strength(out_dir: Path, summary: dict) -> Path:
    plt = _plt()
    by_edit: dict[str, list[tuple[float, float]]] = {}
    for row in summary["conditions"]:
        if isinstance(row["strength"], (int, float)):
            by_edit.setdefault(row["edit"], []).append((float(row["strength"]), row["tpr_at_calibrated"]))
    edits = [a for a, v in by_edit.items() if len(v) > 1]
    cols = 4
    rows = max(1, int(np.ceil(len(edits) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False)
    for ax, edit in zip(axes.flat, edits):
        pts = sorted(by_edit[edit])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
        ax.set_title(edit, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(edits) :]:
        ax.axis("off")
    fig.suptitle(f"TPR at the calibrated threshold (FPR {summary['calibrated_fpr']:g}) vs edit strength", fontsize=10)
    fig.tight_layout()
    path = out_dir / "tpr_vs_strength.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


PART_CURVES: dict[str, tuple[str, dict[str, str]]] = {
    "crop area kept": ("area", {"crop": "crop", "crop+messenger": r"crop ([0-9.]+)\+messenger"}),
    "rotation (degrees)": ("angle", {"cropped": "rotate", "black corners": "rotate_corners"}),
    "pasted into a photo (side)": ("scale", {"paste": "paste"}),
}
"""The panels of :func:`plot_part_curves`: title -> (x label, {series: the edit name, or a
pattern of a chain's label whose group is the x value})."""


def part_curve(summary: dict, key: str) -> list[tuple[float, float]]:
    """(strength, TPR at the calibrated threshold) of one series of :data:`PART_CURVES`: the
    rows of edit ``key``, or the chains whose label matches the pattern ``key``."""
    import re

    pts = []
    for row in summary["conditions"]:
        if row["edit"] == key and isinstance(row["strength"], (int, float)):
            pts.append((float(row["strength"]), row["tpr_at_calibrated"]))
        elif row["edit"] == "chain" and (m := re.fullmatch(key, str(row["strength"]))):
            pts.append((float(m.group(1)), row["tpr_at_calibrated"]))
    return sorted(pts)


def plot_part_curves(path: Path, runs: dict[str, dict]) -> Path:
    """TPR against crop area, rotation angle and paste scale for each run (name -> eval
    summary), one panel each; a series a run does not have is left out."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(PART_CURVES), figsize=(4.2 * len(PART_CURVES), 3.4), squeeze=False)
    styles = ["o-", "s--", "^-.", "d:"]
    for ax, (title, (xlabel, series)) in zip(axes.flat, PART_CURVES.items()):
        for ci, (name, summary) in enumerate(runs.items()):
            for si, (label, key) in enumerate(series.items()):
                pts = part_curve(summary, key)
                if pts:
                    ax.plot(*zip(*pts), styles[si % len(styles)], color=f"C{ci}", label=f"{name}: {label}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not in these runs", ha="center", va="center", transform=ax.transAxes)
    axes.flat[0].set_ylabel("TPR at the card's threshold")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(v: object, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


METRIC_LABELS = {
    "psnr": "PSNR dB (higher: closer)",
    "ssim": "SSIM (higher: closer)",
    "ms_ssim": "MS-SSIM (higher: closer)",
    "lpips": "LPIPS (lower: closer)",
    "ssimulacra2": "SSIMULACRA 2 (higher: closer)",
    "butteraugli_max": "Butteraugli max-norm (lower: closer)",
}


def imperceptibility_table(summary: dict) -> list[str]:
    """Markdown rows: per metric, the stamp's mean / min / max and worst photo, and the mean of
    each JPEG reference (the original re-saved at that quality) where it was measured."""
    imp = summary["imperceptibility"]
    refs = [f"jpeg{q}" for q in summary.get("jpeg_references", [])]
    head = [
        "metric",
        "stamp mean",
        "stamp min",
        "stamp max",
        "stamp worst photo",
        *(f"JPEG q{r[4:]} mean" for r in refs),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key, label in METRIC_LABELS.items():
        v = imp.get(key)
        if not v:
            continue
        digits = 2 if key in ("psnr", "ssimulacra2") else 4 if key != "butteraugli_max" else 3
        worst = v.get("worst")
        cells = [
            label,
            f"{v['mean']:.{digits}f}",
            f"{v['min']:.{digits}f}",
            f"{v['max']:.{digits}f}",
            f"`{worst['photo']}` ({worst['value']:.{digits}f})" if worst else "n/a",
        ]
        cells += [f"{imp[f'{key}_{r}']['mean']:.{digits}f}" if f"{key}_{r}" in imp else "n/a" for r in refs]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


PERCEPTUAL_SCALES = (
    "SSIMULACRA 2: 100 = identical, about 90 = visually lossless, 85 = excellent (libjpeg 4:4:4 quality 90), "
    "70 = high quality. Butteraugli max-norm (the worst spot of the photo): below 1.0 the two look the same, "
    "above about 1.1 a difference can be seen. The JPEG columns are the original photo re-saved at that "
    "quality: a cost everyone has seen, for scale."
)


def eval_markdown(summary: dict[str, Any], plots: list[Path]) -> str:
    """``report.md`` of an evaluation folder: method, imperceptibility, before/after views,
    robustness table and plots."""
    lines = [
        f"# deepraft eval: model `{summary['model']}`",
        "",
        (
            f"{summary['n_photos']} photos at full resolution; {summary['variants_per_condition']} variants per photo "
            f"and condition, each applied to the stamped and to the clean photo. Calibrated threshold "
            f"{summary['threshold']:.3f} (card FPR {summary['calibrated_fpr']:g})."
        ),
        "",
        summary["method"],
        "",
        "## Imperceptibility",
        "",
        *imperceptibility_table(summary),
        "",
        summary["lpips_note"],
        "",
    ]
    if "perceptual_note" in summary:
        lines += [summary["perceptual_note"], ""]
        if summary.get("jpeg_references"):
            lines += [PERCEPTUAL_SCALES, ""]
    lines += _before_after_lines(summary) + _robustness_lines(summary)
    for p in plots:
        lines += [f"![{p.stem}]({p.name})", ""]
    return "\n".join(lines)


def _before_after_lines(summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    shown = summary.get("before_after") or []
    if isinstance(shown, dict):  # an older summary: one photo, before_after.png
        shown = [{"file": "before_after.png", **shown}]
    if shown:
        rank = summary.get("before_after_rank", "ssim")
        lines += [
            (
                f"Before / after at 100 % zoom, for the {len(shown)} photo(s) with the lowest "
                f"{'SSIMULACRA 2' if rank == 'ssimulacra2' else 'SSIM'}: in each, the flattest "
                f"{shown[0]['box'][2] - shown[0]['box'][0]} px window (a sky, a wall: chosen by flatness, not "
                f"by score), clean | stamped | difference x{shown[0]['gain']:g} around mid-grey."
            ),
            "",
        ]
        for s in shown:
            score = f"; whole photo: SSIMULACRA 2 {s['ssimulacra2']:.2f}" if "ssimulacra2" in s else ""
            lines += [
                (
                    f"`{s['photo']}` (window at {s['box'][0]}, {s['box'][1]}; window PSNR "
                    f"{s['psnr_window']:.1f} dB{score})"
                ),
                "",
                f"![{Path(s['file']).stem}]({s['file']})",
                "",
            ]
    return lines


def _robustness_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        "## Robustness",
        "",
        (
            "TPR@cal: stamped samples above the calibrated threshold; FPR@cal: clean samples above it; "
            "TPR@1e-2 / TPR@1e-3: with the threshold taken from this edit's own clean scores (n/a when "
            "there are too few clean samples to resolve that FPR); paper acc.: mean of stamped and clean "
            "accuracy at logit 0, the metric DeepRAFT reported."
        ),
        "",
        "| edit | n stamped / clean | TPR@cal | FPR@cal | TPR@1e-2 | TPR@1e-3 | ROC AUC | paper acc. |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in summary["conditions"]:
        lines.append(
            f"| {r['label']} | {r['n_stamped']} / {r['n_clean']} | {_fmt(r['tpr_at_calibrated'])} | "
            f"{_fmt(r['fpr_at_calibrated'])} | {_fmt(r.get('tpr_at_fpr_0.01'))} | "
            f"{_fmt(r.get('tpr_at_fpr_0.001'))} | {_fmt(r['roc_auc'], 4)} | {_fmt(r['paper_accuracy'])} |"
        )
    lines.append("")
    return lines


def write_eval_report(out_dir: Path) -> Path:
    summary = json.loads((out_dir / "summary.json").read_text())
    labels = [r["label"] for r in summary["conditions"]]
    focus = [
        lab
        for lab in labels
        if lab
        in {
            "none",
            "jpeg 50",
            "jpeg 30",
            "resize 0.5",
            "crop 0.5",
            "rotate 15",
            "perspective 0.2",
            "gaussian_blur 2",
            "screenshot",
            "combined",
        }
    ]
    plots = [
        plot_roc(out_dir, focus or labels[:8]),
        plot_tpr_vs_strength(out_dir, summary),
        plot_part_curves(out_dir / "tpr_vs_part.png", {summary["model"]: summary}),
    ]
    path = out_dir / "report.md"
    path.write_text(eval_markdown(summary, plots))
    return path
