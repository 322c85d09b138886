"""benchmarks/train_step_cost.py: the cost of a training step and its variants, on a tiny model
(a teacher included); a variant this machine cannot run is reported, not fatal."""

from __future__ import annotations

import json

import yaml

from deepraft.training.loop import train
from tests.benchmarks import benchmark_module
from tests.conftest import TINY_MODEL


def test_times_every_variant_and_the_parts_of_a_step(tmp_path, photo_dir):
    from deepraft.core.config import load_train_config

    base = {"model": TINY_MODEL, "data": {"image_size": 48, "max_side": 96}, "batch_size": 2, "max_steps": 1}
    train(load_train_config(None, base), photo_dir, tmp_path / "base", show_progress=False)
    cfg = {**base, "freeze": ["encoder"], "init_from": str(tmp_path / "base"), "distill_from": str(tmp_path / "base")}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "cost.json"
    args = ["--config", str(tmp_path / "tiny.yaml"), "--data", str(photo_dir), "--steps", "1", "--out", str(out)]
    result = benchmark_module("train_step_cost").main(args)
    assert json.loads(out.read_text()) == result
    timed = result["seconds_per_step"]
    assert list(timed) == ["as configured", "bf16 autocast", "channels_last"]  # 48 px: no smaller crops to try
    assert all(isinstance(timed[k], float) and timed[k] > 0 for k in ("as configured", "channels_last"))
    assert isinstance(timed["bf16 autocast"], float) or timed["bf16 autocast"].startswith("failed: ")
    assert result["batch"] == 2 and result["parts_s"]["load_s"] > 0 and result["parts_s"]["augment_s"] > 0
