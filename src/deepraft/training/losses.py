"""Training losses: detection cross-entropy, the distillation hinge and the image (invisibility) loss."""

from __future__ import annotations

import math

import torch
from kornia.color import rgb_to_yuv
from kornia.losses import ssim_loss
from torch.nn import functional as F

from deepraft.core.config import LossConfig


def detection_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def message_loss(bit_logits: torch.Tensor, messages: torch.Tensor) -> torch.Tensor:
    """A keyed model's detection loss on (2n, k) bit logits, [stamped..., clean...]: the stamped
    copies' bits are the ``messages`` (n, k) they carry; a clean copy carries none, so each of its
    bits is pushed to even odds (logit 0): unstamped pictures give the key nothing to match."""
    n = messages.shape[0]
    lf = bit_logits.float()
    stamped = F.binary_cross_entropy_with_logits(lf[:n], messages.float())
    clean = F.binary_cross_entropy_with_logits(lf[n:], torch.full_like(lf[n:], 0.5)) - math.log(2.0)
    return stamped + clean


def distill_loss(logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the stamped copies (``labels`` 1) of how far the logit falls below the teacher's
    on the same copy (0 where it is at or above it); clean copies are left to the detection loss."""
    stamped = labels.bool()
    if not stamped.any():
        return logits.new_zeros(())
    return F.relu(teacher.float()[stamped] - logits.float()[stamped]).mean()


def yuv_mse(a: torch.Tensor, b: torch.Tensor, weights: tuple[float, float, float]) -> torch.Tensor:
    """MSE in YUV with per-channel weights (the paper's image loss)."""
    d = (rgb_to_yuv(a.float()) - rgb_to_yuv(b.float())).pow(2).mean(dim=(0, 2, 3))
    return (d * d.new_tensor(weights)).sum()


def image_loss(stamped: torch.Tensor, clean: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    loss = cfg.yuv_mse_weight * yuv_mse(stamped, clean, cfg.yuv_weights)
    if cfg.ssim_weight > 0:
        loss = loss + cfg.ssim_weight * ssim_loss(stamped.float(), clean.float(), window_size=11)
    return loss


def image_weight(step: int, cfg: LossConfig) -> float:
    if cfg.image_weight_ramp <= 0:
        return cfg.image_weight
    return cfg.image_weight * min(1.0, step / cfg.image_weight_ramp)
