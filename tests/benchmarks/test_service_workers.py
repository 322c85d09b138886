"""benchmarks/service_workers.py starts real service workers and reports their throughput."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_service_workers_benchmark_runs(tmp_path):
    out = tmp_path / "workers.json"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "service_workers.py"),
            "--workers",
            "2",
            "--requests",
            "4",
            "--concurrency",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [x["workers"] for x in res["runs"]] == [2]
    assert all(x["requests"] == 4 and x["requests_per_s"] > 0 for x in res["runs"])
    assert "2 worker(s): 4 scans" in r.stdout
