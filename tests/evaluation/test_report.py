"""The eval report's curves: TPR against crop area, rotation angle and paste scale, read from
an eval summary (rows of plain edits and of chains)."""

from __future__ import annotations

from PIL import Image

from deepraft.evaluation.report import PART_CURVES, part_curve, plot_part_curves


def row(edit, strength, tpr):
    return {"edit": edit, "strength": strength, "tpr_at_calibrated": tpr}


SUMMARY = {
    "conditions": [
        row("none", None, 1.0),
        row("crop", 0.5, 0.7),
        row("crop", 0.1, 0.0),
        row("crop", 0.25, 0.2),
        row("rotate", 15, 0.3),
        row("rotate_corners", 15, 0.7),
        row("chain", "crop 0.5+messenger", 0.6),
        row("chain", "crop 0.1+messenger", 0.05),
        row("chain", "crop 0.36+rotate 7+messenger", 0.01),
        row("paste", 0.5, 0.5),
        row("collage", 0.5, 0.9),
    ]
}


def test_part_curves_read_edits_and_chains_in_order_of_strength():
    crop = PART_CURVES["crop area kept"][1]
    assert part_curve(SUMMARY, crop["crop"]) == [(0.1, 0.0), (0.25, 0.2), (0.5, 0.7)]
    assert part_curve(SUMMARY, crop["crop+messenger"]) == [(0.1, 0.05), (0.5, 0.6)]
    assert part_curve(SUMMARY, "rotate") == [(15.0, 0.3)]
    assert part_curve(SUMMARY, "paste") == [(0.5, 0.5)]
    assert part_curve(SUMMARY, "stickers") == []


def test_part_curves_plot_every_run(tmp_path):
    other = {"conditions": [row("crop", 0.5, 0.99), row("rotate", 30, 0.9)]}
    path = plot_part_curves(tmp_path / "parts.png", {"v2": SUMMARY, "v3": other})
    with Image.open(path) as im:
        assert im.size[0] > 2 * im.size[1]
