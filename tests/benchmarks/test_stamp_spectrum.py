"""benchmarks/stamp_spectrum.py: the stamp's power by frequency band, on a tiny card, and the
band arithmetic on residuals whose spectrum is known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "stamp_spectrum.py"


def test_band_shares_of_known_residuals():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from stamp_spectrum import EDGES, band_shares

    xs = np.arange(200)[None, :] * np.ones((100, 1))
    streaks = np.sin(2 * np.pi * 0.15 * xs)  # vertical streaks, 0.15 cycles per pixel across
    grid, top = band_shares(streaks)
    assert abs(grid.sum() - 1) < 1e-9 and top > 0.99
    col = int(np.searchsorted(EDGES, 0.15)) - 1
    assert grid[0, col] > 0.99  # |fy| 0-0.025, |fx| 0.1-0.2
    noise = np.random.default_rng(0).standard_normal((100, 200))
    grid, top = band_shares(noise)
    assert grid[0].sum() < 0.1 and top < 0.01  # white noise: spread, little in the first row


def test_script_on_a_tiny_card(tmp_path, tiny_area_card):
    out = tmp_path / "s.json"
    cmd = [sys.executable, str(SCRIPT), str(tiny_area_card), "--data", str(EXAMPLES), "--photos", "2"]
    r = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    grid = np.array(res["share_by_fy_fx"])
    assert grid.shape == (6, 6) and abs(grid.sum() - 1) < 1e-3 and len(res["photos"]) == 2
    assert abs(res["share_fy_under_0.05"] - grid[:2].sum()) < 1e-3 and "|fy| < 0.05" in r.stdout
