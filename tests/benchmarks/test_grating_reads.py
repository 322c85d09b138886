"""benchmarks/grating_reads.py on a tiny stamp-v2 card (reads at scales 1 and 2): one logit per
scale and the deployed score, which is their maximum, and counts that agree with them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "grating_reads.py"


def test_reads_per_scale_and_the_deployed_maximum(tmp_path, tiny_area_card):
    out = tmp_path / "g.json"
    cmd = [sys.executable, str(SCRIPT), str(tiny_area_card), "--data", str(EXAMPLES), "--skip", "1"]
    r = subprocess.run([*cmd, "--photos", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["n_photos"] == 2 and res["cycles"] == "32x32" and "over the threshold" in r.stdout
    thr = res["threshold"]
    for row in res["photos"]:
        for kind in ("grating", "stamped"):
            reads = row[kind]
            assert set(reads) == {"scale 1", "scale 2", "deployed"}
            assert abs(reads["deployed"] - max(reads["scale 1"], reads["scale 2"])) < 1e-4
    for kind in ("grating", "stamped"):
        assert res["over_threshold"][kind]["deployed"] == sum(p[kind]["deployed"] > thr for p in res["photos"])
    assert sum(res["grating_largest_read"].values()) == 2


def test_grating_has_the_asked_psnr():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from grating_reads import add_grating

    img = Image.new("RGB", (200, 120), (120, 130, 140))
    forged = np.asarray(add_grating(img, (32, 32), 40.0, 0.3), dtype=np.float64)
    mse = ((forged - np.asarray(img, dtype=np.float64)) ** 2).mean()
    assert abs(10 * np.log10(255.0**2 / mse) - 40.0) < 0.3  # after rounding to 8 bits
    spec = np.abs(np.fft.fft2(forged[..., 0] - forged[..., 0].mean()))
    assert np.unravel_index(spec.argmax(), spec.shape) in {(32, 32), (120 - 32, 200 - 32)}
