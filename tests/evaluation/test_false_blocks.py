"""False blocks: FPR bounds, calibration across kinds of pictures, and ``eval --clean-only``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from deepraft.edits.grids import conditions
from deepraft.evaluation.calibrate import calibrate, fpr_upper_bound, rates_by_kind
from deepraft.evaluation.false_blocks import FALSE_BLOCK_GRID, CleanSettings, run_clean_eval
from tests.conftest import run_cli, synthetic_photo


def test_fpr_upper_bound_has_the_known_values():
    assert fpr_upper_bound(0, 30_000) == pytest.approx(1 - 0.05 ** (1 / 30_000), rel=1e-6)  # (1-p)^n = 0.05
    assert fpr_upper_bound(0, 30_000) < 1e-4 < fpr_upper_bound(0, 29_000)  # the rule of three
    assert fpr_upper_bound(5, 5) == 1.0
    assert fpr_upper_bound(1, 1000) == pytest.approx(0.004735, rel=1e-3)
    with pytest.raises(ValueError, match="no clean samples"):
        fpr_upper_bound(0, 0)


def test_rates_by_kind_count_what_lies_above_each_threshold():
    scores = [0.0, 1.0, 2.0, 3.0, 5.0, 0.5]
    kinds = ["photo", "photo", "photo", "screenshot", "screenshot", "screenshot"]
    out = rates_by_kind(scores, kinds, {"0.1": 2.5, "0.01": 4.0})
    assert out["photo"]["n"] == 3 and out["screenshot"]["n"] == 3
    assert out["photo"]["at_threshold"]["0.1"]["flagged"] == 0
    assert out["screenshot"]["at_threshold"]["0.1"]["flagged"] == 2
    assert out["screenshot"]["at_threshold"]["0.01"]["fpr"] == pytest.approx(1 / 3)
    assert out["screenshot"]["at_threshold"]["0.01"]["fpr_upper_bound"] == pytest.approx(fpr_upper_bound(1, 3))


def test_calibration_mixes_kinds_and_generated_pictures(tmp_path):
    files = []
    for i in range(3):
        synthetic_photo(i).save(tmp_path / f"p{i}.png")
        files.append(tmp_path / f"p{i}.png")
    Image.new("RGB", (90, 70), (250, 250, 250)).save(tmp_path / "page.png")
    files.append(tmp_path / "page.png")

    def brightness(images: list[Image.Image]) -> list[float]:  # a flat white page scores highest
        return [float(np.asarray(im, np.float32).mean()) for im in images]

    cal = calibrate(
        brightness,
        files,
        fprs=(0.1, 0.01),
        variants_per_image=5,
        kinds=["photo"] * 3 + ["document"],
        generated=4,
        generated_variants=2,
    )
    assert cal.n_negatives == 4 * 5 + 4 * 2
    kinds = cal.as_dict()["kinds"]
    assert kinds["photo"]["n"] == 15 and kinds["document"]["n"] == 5
    assert sum(e["n"] for k, e in kinds.items() if k.startswith("generated ")) == 8
    assert set(cal.fpr_upper_bounds) == {"0.1", "0.01"}
    every = sum(e["at_threshold"]["0.1"]["flagged"] for e in kinds.values())
    assert cal.fpr_upper_bounds["0.1"] == pytest.approx(fpr_upper_bound(every, cal.n_negatives))
    with pytest.raises(ValueError, match="4 files but 1 kinds"):
        calibrate(brightness, files, kinds=["photo"])


def _kinded_folder(tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    rows = ["file\tkind\tpackage"]
    for i in range(2):
        synthetic_photo(10 + i).save(folder / f"photo{i}.png")
        rows.append(f"photo{i}.png\tphoto\tcam{i}")
    Image.new("RGB", (96, 80), (255, 255, 255)).save(folder / "page.png")
    rows.append("page.png\tdocument\tdocs")
    (folder / "broken.png").write_bytes(b"not a png")
    rows.append("broken.png\tdocument\tdocs")
    (folder / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_clean_eval_counts_flags_per_kind_as_the_samples_say(tmp_path, tiny_stamper):
    folder = _kinded_folder(tmp_path)
    sources = [(folder / f"photo{i}.png", "photo") for i in range(2)]
    sources += [(folder / "page.png", "document"), (folder / "broken.png", "document")]
    out = tmp_path / "out"
    summary = run_clean_eval(tiny_stamper, sources, out, CleanSettings(variants=2))
    assert len(summary["failed"]) == 1 and "broken.png" in summary["failed"][0]
    rows = list(csv.DictReader((out / "samples.csv").open()))
    n_edits = len(summary["grid"])
    assert len(rows) == 3 * n_edits * 2 and {r["kind"] for r in rows} == {"photo", "document"}
    for kind, entry in summary["kinds"].items():
        mine = [float(r["score"]) for r in rows if r["kind"] == kind]
        assert entry["n"] == len(mine)
        for name, thr in summary["thresholds"].items():
            flagged = sum(s > thr for s in mine)
            at = entry["at_threshold"][name]
            assert at["flagged"] == flagged and at["fpr_upper_bound"] == pytest.approx(
                fpr_upper_bound(flagged, len(mine))
            )
        assert entry["highest_score"] == pytest.approx(max(mine), abs=1e-4)
    assert json.loads((out / "summary.json").read_text())["n_samples"] == len(rows)
    assert "| document | 1 |" in (out / "report.md").read_text()


def test_eval_clean_only_from_the_command_line(tmp_path, tiny_card):
    folder = _kinded_folder(tmp_path)
    out = tmp_path / "out"
    r = run_cli("eval", "--model", tiny_card, "--data", folder, "--out", out, "--clean-only")
    assert r.returncode == 1, r.stderr  # the broken file: reported, the rest measured
    assert "photo:" in r.stderr and "document:" in r.stderr and "upper bound" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kinds"]["photo"]["pictures"] == 2 and summary["kinds"]["document"]["n"] > 0
    r = run_cli(
        "eval", "--model", tiny_card, "--data", synthetic_dir(tmp_path), "--out", out, "--clean-only", "--split", "test"
    )
    assert r.returncode == 2 and "no MANIFEST.tsv to split by package" in " ".join(r.stderr.split())


def test_eval_clean_only_reads_an_uncalibrated_run_for_its_scores(tmp_path, tiny_run):
    """A training run has no calibrated threshold: its clean scores are reported per kind, and no
    sample counts as flagged (it used to fail with a KeyError once every picture was scanned)."""
    folder = _kinded_folder(tmp_path)
    out = tmp_path / "out"
    r = run_cli("eval", "--model", tiny_run, "--data", folder, "--out", out, "--clean-only")
    assert r.returncode == 1, r.stderr  # the broken file: reported, the rest measured
    assert "photo:" in r.stderr and "highest score" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["thresholds"] == {} and summary["flagged"] == []
    assert summary["kinds"]["photo"]["pictures_flagged"] is None and summary["kinds"]["photo"]["n"] > 0
    report = (out / "report.md").read_text()
    assert "no calibrated threshold" in report and "| photo | 2 |" in report


def synthetic_dir(tmp_path):
    d = tmp_path / "plain"
    d.mkdir(exist_ok=True)
    synthetic_photo(1).save(d / "a.png")
    return d


def test_eval_grid_option_runs_the_false_block_edits_on_stamped_pictures(tmp_path, tiny_card):
    """``eval --grid false-blocks``: the stamped-and-clean eval under the false-block edits (TPR
    on stamped non-photos); an unknown grid name is a usage error naming the known ones."""
    out = tmp_path / "stamped"
    r = run_cli(
        "eval", "--model", tiny_card, "--data", synthetic_dir(tmp_path), "--out", out, "--grid", "false-blocks",
        "--variants", "1",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    labels = [c["label"] for c in json.loads((out / "summary.json").read_text())["conditions"]]
    assert labels == [c.label for c in conditions(FALSE_BLOCK_GRID)]
    r = run_cli("eval", "--model", tiny_card, "--data", synthetic_dir(tmp_path), "--out", out, "--grid", "nope")
    assert r.returncode == 2 and "full, quick, false-blocks" in r.stderr
