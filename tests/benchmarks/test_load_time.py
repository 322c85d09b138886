"""benchmarks/load_time.py times load() with the shipped scan graph and with one exported at load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_load_time_measures_both_graphs(tmp_path):
    out = tmp_path / "load.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load_time.py"), "--repeats", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert (res["shipped"]["engine"], res["shipped"]["graph"]) == ("onnxruntime", "shipped")
    assert (res["exported"]["engine"], res["exported"]["graph"]) == ("onnxruntime", "exported")
    assert 0 < res["shipped"]["load_s"] and 0 < res["exported"]["load_s"]
    assert "shipped   graph" in r.stdout
