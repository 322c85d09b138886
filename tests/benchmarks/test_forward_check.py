"""benchmarks/forward_check.py runs end to end on a tiny stamp-v2 card (numbers not judged)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("forward_check", ROOT / "benchmarks" / "forward_check.py")
    assert spec is not None and spec.loader is not None
    fc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fc)
    return fc


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
        "noise 0.1",
        "brightness 2",
    } <= set(res["edits"])
    assert all(res["threshold"] >= row["median_clean"] for row in res["edits"].values())
    assert 20 < res["psnr"]["min"] <= res["psnr"]["mean"] and res["ssimulacra2"]["mean"] <= 100
    assert "TPR at zero FP" in r.stdout


def test_forward_check_reads_at_other_scales_when_asked(tiny_area_card):
    """--scan-scales adds reads to the deployed score: the score is the largest read, so every
    median can only rise over the model's own scales; scales without 1 are refused."""
    fc = _module()
    files = sorted(EXAMPLES.glob("*.jpg"))
    backgrounds = [Image.open(f).convert("RGB") for f in files[-4:]]
    own = fc.check(str(tiny_area_card), files[:1], backgrounds)
    more = fc.check(str(tiny_area_card), files[:1], backgrounds, scan_scales=[0.5, 1.0, 2.0])
    for name, row in own["edits"].items():
        assert more["edits"][name]["median_stamped"] >= row["median_stamped"] - 1e-5
        assert more["edits"][name]["median_clean"] >= row["median_clean"] - 1e-5
    assert any(more["edits"][n]["median_clean"] > r["median_clean"] + 1e-4 for n, r in own["edits"].items())
    with pytest.raises(SystemExit, match="include 1"):
        fc.check(str(tiny_area_card), files[:1], backgrounds, scan_scales=[0.5, 2.0])


def test_photometric_edits_are_the_evaluation_s_and_the_same_for_stamped_and_clean():
    table = _module().edits([])
    im = Image.fromarray(np.full((20, 30, 3), 100, np.uint8))
    a, b = np.asarray(table["noise 0.1"](im, 3), float), np.asarray(table["noise 0.1"](im, 3), float)
    assert np.array_equal(a, b) and 20 < (a - 100).std() < 30  # sigma 0.1 of 255, one draw per photo
    assert not np.array_equal(a, np.asarray(table["noise 0.1"](im, 4)))
    assert (np.asarray(table["brightness 2"](im, 0)) == 200).all()
