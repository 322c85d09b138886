"""benchmarks/keyed_reads.py (stamp v3 design study, candidate C): the bound threshold, the
summary's two thresholds, and the script end to end on a tiny keyed run (numbers not judged)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepraft.core.config import load_train_config
from deepraft.core.data import find_images
from deepraft.core.imageio import read_image
from deepraft.models import functional as Fn
from deepraft.training.loop import train
from tests.benchmarks import benchmark_module
from tests.conftest import EXAMPLES, TINY_AREA_MODEL

ROOT = Path(__file__).resolve().parents[2]


def _module():
    return benchmark_module("keyed_reads")


def test_bound_threshold_is_the_union_of_hoeffding_bounds():
    assert Fn.keyed_threshold(1e-3, 1) == pytest.approx(3.717, abs=1e-3)
    assert math.exp(-(Fn.keyed_threshold(1e-3, 5) ** 2) / 2) * 5 == pytest.approx(1e-3)


def test_summary_thresholds_at_the_bound_and_on_the_clean_samples():
    kr = _module()
    n = len(kr.SCALES)
    rows, reads = [], []
    for i in range(1000):  # clean photos: keyed scores i / 1000 at every scale
        rows.append(("p", "clean", "none"))
        reads.append(np.full(n, i / 1000, np.float32))
    rows.append(("s", "clean screenshot", "none"))
    reads.append(np.full(n, -1.0, np.float32))
    for v in (0.9995, 4.0):
        rows.append(("p", "stamped", "crop 0.5"))
        reads.append(np.full(n, v, np.float32))
    res = kr.summarise(rows, np.stack(reads))["deployed (scales 1, 2)"]
    assert res["bound"]["threshold"] == pytest.approx(Fn.keyed_threshold(1e-3, 2))
    assert res["bound"]["tpr"]["crop 0.5"] == 0.5  # only the 4.0 read passes the bound
    assert res["empirical"]["threshold"] == pytest.approx(0.998)  # one of 1,001 clean samples above
    assert res["empirical"]["tpr"]["crop 0.5"] == 1.0
    assert res["highest_clean"] == {"clean": pytest.approx(0.999), "clean screenshot": -1.0}


def test_keyed_reads_runs_end_to_end_on_a_tiny_keyed_run(tmp_path, photo_dir):
    cfg = load_train_config(
        None,
        {
            "model": {**{k: v for k, v in TINY_AREA_MODEL.items() if k != "scan_scales"}, "message_bits": 6},
            "data": {"image_size": 40, "max_side": 96},
            "batch_size": 3,
            "max_steps": 2,
            "checkpoint_every": 2,
        },
    )
    train(cfg, photo_dir, tmp_path / "run", show_progress=False)
    kr = _module()
    model = kr.load_keyed(tmp_path / "run")
    key = kr.draw_key(6, 0)
    pic = read_image(find_images(EXAMPLES)[0])
    stamped = kr.protect(model, key, pic)
    assert stamped.rgb.shape == pic.rgb.shape and not np.array_equal(stamped.rgb, pic.rgb)
    reads = kr.keyed_reads(model, key, stamped)
    assert reads.shape == (len(kr.SCALES),) and np.all(np.abs(reads) <= math.sqrt(6) + 1e-4)
    assert torch.equal(kr.draw_key(6, 0), key) and set(key.tolist()) <= {0.0, 1.0}
    assert Fn.keyed_score(torch.ones(1, 6), key).item() == pytest.approx((2 * key.sum().item() - 6) / math.sqrt(6))
    out = tmp_path / "keyed.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "keyed_reads.py"), str(tmp_path / "run"), "--data", str(EXAMPLES),
         "--photos", "1", "--variants", "1", "--nonphoto", str(tmp_path / "none"), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["samples"] == 2 * len(kr.geometry_search.conditions(kr.geometry_search.STUDY_GRID))
    assert set(res["read_sets"]) == set(kr.READ_SETS)
    assert np.load(out.with_suffix(".npz"))["reads"].shape == (res["samples"], len(kr.SCALES))
