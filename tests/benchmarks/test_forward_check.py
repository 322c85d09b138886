"""benchmarks/forward_check.py runs end to end on a tiny stamp-v2 card (numbers not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


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
    assert {
        "shift 2 px",
        "crop 95 %",
        "hflip",
        "rot90",
        "collage at half size",
        "border 30 % black",
        "crop 25 % at a corner",
    } <= set(res["edits"])
    assert all(res["threshold"] >= row["median_clean"] for row in res["edits"].values())
    assert 20 < res["psnr"]["min"] <= res["psnr"]["mean"] and res["ssimulacra2"]["mean"] <= 100
    assert "TPR at zero FP" in r.stdout
