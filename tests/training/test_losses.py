"""Known answers for the training losses."""

from __future__ import annotations

import math

import pytest
import torch

from deepraft.core.config import LossConfig
from deepraft.training.losses import detection_loss, distill_loss, image_loss, image_weight, message_loss, yuv_mse


def test_detection_loss_known_values():
    labels = torch.tensor([1.0, 0.0])
    assert detection_loss(torch.zeros(2), labels).item() == pytest.approx(math.log(2))
    # logit 2 on a positive, -2 on a negative: -log(sigmoid(2)) each
    assert detection_loss(torch.tensor([2.0, -2.0]), labels).item() == pytest.approx(math.log1p(math.exp(-2)))
    assert detection_loss(torch.tensor([-2.0, 2.0]), labels).item() == pytest.approx(math.log1p(math.exp(2)))


def test_distill_loss_counts_only_stamped_copies_below_the_teacher():
    labels = torch.tensor([1.0, 1.0, 1.0, 0.0])
    teacher = torch.tensor([5.0, 5.0, 5.0, -9.0])
    # stamped: 2 below the teacher by 3, one above it (no loss); the clean copy far above its teacher
    logits = torch.tensor([2.0, 2.0, 7.0, 9.0])
    assert distill_loss(logits, teacher, labels).item() == pytest.approx((3 + 3 + 0) / 3)
    assert distill_loss(teacher, teacher, labels).item() == 0.0
    assert distill_loss(logits, teacher, torch.zeros(4)).item() == 0.0


def test_yuv_mse_of_a_pure_red_shift():
    """A +0.1 red shift everywhere: (dY, dU, dV) = 0.1 x (0.299, -0.147, 0.615) (BT.601 YUV)."""
    a = torch.zeros(2, 3, 8, 8)
    b = a.clone()
    b[:, 0] += 0.1
    d = [0.1 * 0.299, 0.1 * -0.147, 0.1 * 0.615]
    w = (1.0, 100.0, 100.0)
    expected = sum(wi * di * di for wi, di in zip(w, d))
    assert yuv_mse(b, a, w).item() == pytest.approx(expected, rel=1e-2)
    assert yuv_mse(a, a, w).item() == 0.0
    assert yuv_mse(b, a, (1.0, 0.0, 0.0)).item() == pytest.approx(d[0] ** 2, rel=1e-3)


def test_image_loss_adds_the_weighted_ssim_term():
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 32, 32, generator=g)
    stamped = (clean + 0.05 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    plain = LossConfig(ssim_weight=0.0, yuv_mse_weight=2.0)
    assert image_loss(stamped, clean, plain).item() == pytest.approx(
        2.0 * yuv_mse(stamped, clean, plain.yuv_weights).item()
    )
    with_ssim = LossConfig(ssim_weight=0.5, yuv_mse_weight=0.0)
    assert image_loss(clean, clean, with_ssim).item() == pytest.approx(0.0, abs=1e-6)
    assert image_loss(stamped, clean, with_ssim).item() > 0.0


@pytest.mark.parametrize(("step", "expected"), [(0, 0.0), (50, 1.0), (100, 2.0), (500, 2.0)])
def test_image_weight_ramps_linearly(step, expected):
    assert image_weight(step, LossConfig(image_weight=2.0, image_weight_ramp=100)) == pytest.approx(expected)


def test_image_weight_without_ramp_is_constant():
    assert image_weight(0, LossConfig(image_weight=3.0, image_weight_ramp=0)) == 3.0


def test_message_loss_wants_the_stamped_bits_and_even_odds_on_clean_copies():
    messages = torch.tensor([[1.0, 0.0, 1.0]])
    right = torch.tensor([[20.0, -20.0, 20.0], [0.0, 0.0, 0.0]])
    assert message_loss(right, messages).item() < 1e-6
    wrong_bits = torch.tensor([[-20.0, 20.0, -20.0], [0.0, 0.0, 0.0]])
    sure_clean = torch.tensor([[20.0, -20.0, 20.0], [5.0, -5.0, 5.0]])
    assert (
        message_loss(wrong_bits, messages) > 10 and message_loss(sure_clean, messages) > 1.5
    )  # clean: 0.5 * (softplus(5) + softplus(-5)) - ln 2 each
