"""benchmarks/scan_registration.py on a tiny stamp-v2 card: every read it reports, and reads that
take a maximum over more phases or scales never score lower than the reads they contain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "scan_registration.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), *args, "--data", str(EXAMPLES), "--photos", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_reads_and_shifts(tmp_path, tiny_area_card):
    out = tmp_path / "reg.json"
    r = run(str(tiny_area_card), "--scales", "1", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert set(res["shift_scores"]) == {"0", "1", "2", "3", "4", "8", "16"}
    reads = res["reads"]
    assert set(reads) == {
        "phase 0, scale 1",
        "max of 16 phases, scale 1",
        "max of 16 phases, scale 2",
        "max of 16 phases and every scale",
        "phase 0, max of scale 1 and larger",
    }
    for wider, narrower in (
        ("max of 16 phases, scale 1", "phase 0, scale 1"),
        ("max of 16 phases and every scale", "max of 16 phases, scale 1"),
        ("max of 16 phases and every scale", "max of 16 phases, scale 2"),
        ("phase 0, max of scale 1 and larger", "phase 0, scale 1"),
        ("max of 16 phases and every scale", "phase 0, max of scale 1 and larger"),
    ):
        assert reads[wider]["threshold"] >= reads[narrower]["threshold"]
        for edit, row in reads[wider]["edits"].items():
            assert row["median"] >= reads[narrower]["edits"][edit]["median"] - 1e-6, (wider, edit)
    assert "collage 0.5" in reads["phase 0, scale 1"]["edits"] and "moved" in r.stdout


def test_scales_must_include_the_deployed_one(tiny_area_card):
    r = run(str(tiny_area_card), "--scales", "0.5", "2")
    assert r.returncode != 0 and "--scales must include 1" in r.stderr
