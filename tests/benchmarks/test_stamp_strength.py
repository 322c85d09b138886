"""benchmarks/stamp_strength.py on a tiny stamp-v2 card: half the stamp is about 6 dB more PSNR
and no more visible; a bad --set is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "stamp_strength.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), *args, "--data", str(EXAMPLES), "--first", "0", "--photos", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_half_the_stamp_is_6_db_weaker(tmp_path, tiny_area_card):
    out = tmp_path / "strength.json"
    r = run(str(tiny_area_card), "--scale", "1", "0.5", "--set", "mask_floor=0.002", "--out", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["set"] == {"mask_floor": 0.002} and len(res["rows"]) == 2
    full, half, jpeg = (res["summary"][k] for k in ("x1", "x0.5", "jpeg90"))
    assert 4.5 < half["psnr_mean"] - full["psnr_mean"] < 7.5
    assert half["ssimulacra2_mean"] >= full["ssimulacra2_mean"] - 0.5
    assert 20 < jpeg["psnr_mean"] < 60 and "SSIMULACRA 2" in r.stdout


def test_unknown_config_field_is_refused(tiny_area_card):
    r = run(str(tiny_area_card), "--set", "no_such_field=1")
    assert r.returncode != 0 and "no_such_field" in r.stderr
