"""benchmarks/scan_decode.py on a tiny card: scores of the full decode and of the fast scan path
per draft factor, their differences and the counts flagged at the card's threshold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scan_decode.py"


def test_fast_path_scores_beside_the_full_decode(tmp_path, tiny_area_card):
    out = tmp_path / "d.json"
    cmd = [sys.executable, str(SCRIPT), str(tiny_area_card), "--data", str(EXAMPLES), "--photos", "2"]
    r = subprocess.run([*cmd, "--size", "800", "600", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["n_photos"] == 2 and res["size"] == "800x600" and len(res["rows"]) == 4
    for name in ("draft 2", "draft 1.5"):
        diffs = [abs(row[name] - row["full"]) for row in res["rows"]]
        assert abs(res["differences"][name]["max_abs_diff"] - max(diffs)) < 1e-9
        assert res["differences"][name]["max_abs_diff"] < 1.0  # a copy read from a reduced decode, not another picture
    thr = res["threshold"]
    for name, counts in res["flagged"].items():
        assert counts["clean"] == sum(row[name] > thr for row in res["rows"] if row["kind"] == "clean")
