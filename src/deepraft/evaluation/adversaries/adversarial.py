"""Adversarial removal and forging attacks on the scanner (torchattacks: APGD, Square, AutoAttack):
the third meaning of "attack" (an attacker's), not training's augmentations (:mod:`deepraft.training`)
nor the evaluation's benign edits (:mod:`deepraft.edits`).

* **removal**: stamped images, the attacker wants them judged clean;
* **forging**: clean images, the attacker wants them judged stamped (to get someone's
  picture blocked).

Attacks act on the deployed score's input (the scan copy, values in [0, 1]) with an L-inf or L2
budget. Against a smoothed scanner they adapt: the model they see adds the smoothing noise at
every call, and APGD averages its gradient over ``eot`` noise draws (expectation over
transformation); success is then judged by the *smoothed* decision (Cohen's PREDICT, where an
abstention counts as a failure of the defence), not by one noisy pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from deepraft.evaluation.smoothing import Smooth
from deepraft.models.functional import psnr  # the package's one torch PSNR (peak 1)

ATTACK_NAMES = ("apgd-ce", "square", "autoattack")
QUERY_ATTACKS = ("square",)
"""Attacks that only query the score (no gradients)."""


class TwoClassScanner(nn.Module):
    """Wraps a logit scanner as a 2-class classifier (class 1: stamped) for torchattacks,
    with the decision threshold folded in: logits (-z/2, z/2), z = score - threshold."""

    def __init__(
        self, score_fn: Callable[[torch.Tensor], torch.Tensor], threshold: float = 0.0, smoothing_std: float = 0.0
    ) -> None:
        super().__init__()
        self.score_fn = score_fn
        self.threshold = float(threshold)
        self.smoothing_std = float(smoothing_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.smoothing_std > 0:
            x = x + torch.randn_like(x) * self.smoothing_std
        z = self.score_fn(x).float() - self.threshold
        return torch.stack([-z / 2, z / 2], dim=1)


class AttackSanityError(RuntimeError):
    """Raised when an attack cannot be trusted (vanishing gradients, a broken attack)."""


def check_gradients(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean absolute input gradient of the cross-entropy; raises if it vanishes (a sign of
    gradient masking, which makes white-box attacks report false robustness)."""
    x = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), labels)
    (grad,) = torch.autograd.grad(loss, x)
    g = float(grad.abs().mean())
    if not math.isfinite(g) or g == 0.0:
        raise AttackSanityError(f"input gradients are {g}: white-box results would be meaningless")
    return g


def make_attack(
    name: str,
    model: nn.Module,
    eps: float,
    norm: str = "Linf",
    steps: int = 50,
    eot: int = 1,
    n_queries: int = 1000,
    seed: int = 0,
) -> Any:
    import torchattacks

    if name == "apgd-ce":
        return torchattacks.APGD(
            model, norm=norm, eps=eps, steps=steps, n_restarts=1, seed=seed, loss="ce", eot_iter=eot
        )
    if name == "square":
        return torchattacks.Square(model, norm=norm, eps=eps, n_queries=n_queries, n_restarts=1, seed=seed)
    if name == "autoattack":
        return torchattacks.AutoAttack(model, norm=norm, eps=eps, version="standard", n_classes=2, seed=seed)
    raise ValueError(f"unknown attack {name!r}; known: {', '.join(ATTACK_NAMES)}")


@dataclass
class AttackResult:
    attack: str
    goal: str
    norm: str
    eps: float
    n: int
    clean_accuracy: float
    """Fraction decided correctly before the attack."""
    robust_accuracy: float
    """Fraction still decided correctly after the attack."""
    mean_psnr: float | None
    """Mean PSNR of the successful adversarial inputs against their originals (the visible
    cost of the attack); None when no attack succeeded."""
    smoothed: bool


def run_attack(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    goal: str,
    attack: str,
    eps: float,
    threshold: float = 0.0,
    norm: str = "Linf",
    smoothing_std: float = 0.0,
    eot: int = 8,
    steps: int = 50,
    n_queries: int = 1000,
    smooth_n: int = 200,
    smooth_alpha: float = 0.001,
    seed: int = 0,
) -> AttackResult:
    """Attack a batch ``x`` (B,3,h,w) of working copies and score the outcome.

    ``goal``: 'removal' (x are stamped, true label 1) or 'forging' (x are clean, label 0).
    With ``smoothing_std`` > 0 the attack sees the noisy model, APGD uses ``eot`` draws per
    gradient, and correctness is judged by the smoothed classifier with ``smooth_n`` draws.
    """
    if goal not in ("removal", "forging"):
        raise ValueError(f"goal must be 'removal' or 'forging', got {goal!r}")
    label = 1 if goal == "removal" else 0
    labels = torch.full((x.shape[0],), label, dtype=torch.long, device=x.device)
    model = TwoClassScanner(score_fn, threshold, smoothing_std).eval()
    if attack not in QUERY_ATTACKS:  # a query attack needs no gradient (its score may have none)
        check_gradients(model, x, labels)
    atk = make_attack(attack, model, eps, norm, steps, eot if smoothing_std > 0 else 1, n_queries, seed)
    x_adv = atk(x, labels).detach()
    if norm == "Linf" and (x_adv - x).abs().max() > eps + 1e-5:
        raise AttackSanityError(f"{attack} left its L-inf budget: {(x_adv - x).abs().max():.5f} > {eps:.5f}")

    def decide(batch: torch.Tensor) -> torch.Tensor:
        if smoothing_std > 0:
            smooth = Smooth(score_fn, smoothing_std, threshold)
            g = torch.Generator(device=batch.device).manual_seed(seed)
            preds = [smooth.predict(b, smooth_n, smooth_alpha, generator=g) for b in batch]
            return torch.tensor(preds, device=batch.device)
        with torch.no_grad():
            return (score_fn(batch).float() > threshold).long()

    before, after = decide(x), decide(x_adv)
    success = (before == label) & (after != label)
    psnrs = psnr(x_adv, x)[success]
    return AttackResult(
        attack=attack,
        goal=goal,
        norm=norm,
        eps=eps,
        n=x.shape[0],
        clean_accuracy=float((before == label).float().mean()),
        robust_accuracy=float((after == label).float().mean()),
        mean_psnr=float(psnrs.mean()) if psnrs.numel() else None,
        smoothed=smoothing_std > 0,
    )


__all__ = [
    "ATTACK_NAMES",
    "AttackResult",
    "AttackSanityError",
    "TwoClassScanner",
    "check_gradients",
    "make_attack",
    "run_attack",
]
