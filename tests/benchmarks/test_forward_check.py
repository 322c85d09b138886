"""benchmarks/forward_check.py runs end to end on a tiny stamp-v2 card (numbers not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepraft.edits.grids import conditions
from tests.benchmarks import benchmark_module
from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def _module():
    return benchmark_module("forward_check")


def test_forward_check_writes_every_edit(tmp_path, tiny_area_card):
    out = tmp_path / "check.json"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "forward_check.py"),
            str(tiny_area_card),
            "--data",
            str(EXAMPLES),
            "--photos",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    names = sorted(p.name for p in EXAMPLES.glob("*.jpg"))[:2]
    assert res["photos"] == names and len(res["per_photo"]) == 2
    assert list(res["edits"]) == [c.label for c in conditions(_module().GRID)]
    assert {"crop 0.95", "hflip", "rot90", "collage 0.5", "pad 0.3", "crop 0.25", "noise 0.1"} <= set(res["edits"])
    assert all(res["threshold"] >= row["median_clean"] for row in res["edits"].values())
    assert 20 < res["psnr"]["min"] <= res["psnr"]["mean"] and res["ssimulacra2"]["mean"] <= 100
    assert "TPR at zero FP" in r.stdout


def test_forward_check_reads_at_other_scales_when_asked(tiny_area_card):
    """--scan-scales adds reads to the deployed score: the score is the largest read, so every
    median can only rise over the model's own scales; scales without 1 are refused."""
    fc = _module()
    files = sorted(EXAMPLES.glob("*.jpg"))
    own = fc.check(str(tiny_area_card), files[:1])
    more = fc.check(str(tiny_area_card), files[:1], scan_scales=[0.5, 1.0, 2.0])
    for name, row in own["edits"].items():
        assert more["edits"][name]["median_stamped"] >= row["median_stamped"] - 1e-5
        assert more["edits"][name]["median_clean"] >= row["median_clean"] - 1e-5
    assert any(more["edits"][n]["median_clean"] > r["median_clean"] + 1e-4 for n, r in own["edits"].items())
    with pytest.raises(SystemExit, match="include 1"):
        fc.check(str(tiny_area_card), files[:1], scan_scales=[0.5, 2.0])
