"""benchmarks/geometry_search.py (stamp v3 design study, candidate A): the turned reads have no
black corners, read sets are thresholded on their own clean scores, and the script runs end to
end on a tiny card (numbers not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.benchmarks import benchmark_module
from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def _module():
    return benchmark_module("geometry_search")


def test_turned_reads_keep_the_aspect_ratio_and_no_black_corners():
    gs = _module()
    white = np.full((120, 160, 3), 255, np.uint8)
    for degrees in (15, -30, 45):
        out = gs.turned(white, degrees)
        assert abs(out.shape[1] / out.shape[0] - 160 / 120) < 0.05
        assert out.min() >= 200  # only the picture, no fill from outside the turned frame
    assert gs.turned(white, 0) is white


def test_each_read_set_is_thresholded_on_its_own_clean_scores():
    gs = _module()
    n_s, n_a = len(gs.SCALES), len(gs.ANGLES)
    rows, grids = [], []
    for i in range(1000):  # clean photos: every read i / 1000, a turned read of one photo higher
        g = np.full((n_s, n_a), i / 1000, np.float32)
        if i == 0:
            g[gs.SCALES.index(1.0), gs.ANGLES.index(45)] = 5.0
        rows.append(("p", "clean", "none"))
        grids.append(g)
    for v in (0.9995, 3.0):  # two stamped samples: one under every threshold's reach, one above
        rows.append(("p", "stamped", "crop 0.5"))
        grids.append(np.full((n_s, n_a), v, np.float32))
    res = gs.summarise(rows, np.stack(grids))
    deployed, turned = res["deployed (scales 1, 2)"], res["+ angles to 45"]
    assert deployed["threshold"] == np.float32(0.998)  # one clean sample above: FPR 1e-3
    assert deployed["tpr"]["crop 0.5"] == 1.0 and deployed["clean_above"]["clean"] == [1, 1000]
    assert turned["threshold"] == np.float32(0.999)  # the turned read lifts one clean score to 5
    assert turned["tpr"]["crop 0.5"] == 1.0
    assert gs.summarise(rows, np.stack(grids), photos_only=True)["deployed (scales 1, 2)"]["threshold"] > 0.99


def test_geometry_search_runs_end_to_end(tmp_path, tiny_area_card):
    out = tmp_path / "search.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "geometry_search.py"), str(tiny_area_card), "--data", str(EXAMPLES),
         "--photos", "1", "--variants", "1", "--nonphoto", str(tmp_path / "none"), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    gs = _module()
    assert res["samples"] == 2 * len(gs.conditions(gs.STUDY_GRID))
    assert set(res["read_sets"]) == set(gs.READ_SETS) == set(res["read_sets_photo_threshold"])
    raw = np.load(out.with_suffix(".npz"))
    assert raw["grids"].shape == (res["samples"], len(gs.SCALES), len(gs.ANGLES))
