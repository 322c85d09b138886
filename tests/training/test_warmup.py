import math

import torch

from deepraft.core.config import ModelConfig, TrainConfig
from deepraft.models import build_model
from deepraft.models import functional as Fn
from deepraft.training.loop import stamp_boost


def test_stamp_boost_fades_linearly_in_decibels():
    cfg = TrainConfig(strength_warmup_db=8.0, strength_warmup_steps=100)
    assert math.isclose(20 * math.log10(stamp_boost(0, cfg)), 8.0)
    assert math.isclose(20 * math.log10(stamp_boost(50, cfg)), 4.0)
    assert stamp_boost(100, cfg) == 1.0 and stamp_boost(10_000, cfg) == 1.0
    assert stamp_boost(0, TrainConfig()) == 1.0


def test_boost_strengthens_the_stamp_by_its_decibels():
    model = build_model(
        ModelConfig(
            encoder="unet_fc_tiny",
            scanner="mapnet_tiny",
            work_size=32,
            work_mode="area",
            psnr_target=45.0,
            psnr_mode="exact",
        )
    )
    x = torch.rand(2, 3, 32, 32) * 0.5 + 0.25
    with torch.no_grad():
        plain = Fn.psnr(model.stamp(x), x)
        boosted = Fn.psnr(model.stamp(x, boost=10 ** (6 / 20)), x)
    assert torch.allclose(plain - boosted, torch.full_like(plain, 6.0), atol=0.05)
