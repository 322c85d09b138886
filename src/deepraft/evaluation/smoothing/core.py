"""Randomized smoothing for the binary stamp decision (Cohen, Rosenfeld & Kolter, 2019).

The base classifier is ``f(x) = 1[score(x) > threshold]`` (1: stamped). The smoothed classifier
``g(x) = argmax_c P(f(x + e) = c)``, ``e ~ N(0, sigma^2 I)``, is evaluated by Monte Carlo:

* :meth:`Smooth.predict`: with probability at least ``1 - alpha`` the returned class equals
  ``g(x)``, or it returns :data:`ABSTAIN`.
* :meth:`Smooth.certify`: with probability at least ``1 - alpha`` the returned class equals
  ``g(x)`` and ``g`` is constant within the returned L2 radius ``sigma * Phi^-1(pA_lower)``
  around ``x``, where ``pA_lower`` is the one-sided Clopper-Pearson lower confidence bound on
  ``P(f(x + e) = cA)``; it abstains when ``pA_lower <= 1/2``.

The noise and the radius live in the space the deployed score reads: the scan copy (the working
copy at the largest of the model's scan scales), values in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta, binomtest, norm

ABSTAIN = -1


def lower_confidence_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion."""
    if trials <= 0:
        raise ValueError("trials must be positive")
    if successes <= 0:
        return 0.0
    return float(beta.ppf(alpha, successes, trials - successes + 1))


def certified_radius(p_lower: float, sigma: float) -> float:
    """L2 radius sigma * Phi^-1(p_lower) for p_lower > 1/2, else 0."""
    return float(sigma * norm.ppf(p_lower)) if p_lower > 0.5 else 0.0


@dataclass(frozen=True)
class Certificate:
    prediction: int
    """1 stamped, 0 clean, or ABSTAIN (-1)."""
    radius: float
    p_lower: float
    counts: tuple[int, int]

    @property
    def abstained(self) -> bool:
        return self.prediction == ABSTAIN


class Smooth:
    """A smoothed binary classifier around ``score_fn`` (batch of inputs -> scores)."""

    def __init__(self, score_fn: Callable[[torch.Tensor], torch.Tensor], sigma: float, threshold: float = 0.0) -> None:
        if sigma <= 0:
            raise ValueError("sigma must be positive")
        self.score_fn = score_fn
        self.sigma = float(sigma)
        self.threshold = float(threshold)

    @torch.no_grad()
    def counts(
        self, x: torch.Tensor, num: int, batch_size: int = 256, generator: torch.Generator | None = None
    ) -> np.ndarray:
        """How often the base classifier says (clean, stamped) under ``num`` noise draws of
        the single input ``x`` (C,H,W)."""
        out = np.zeros(2, dtype=np.int64)
        remaining = num
        while remaining > 0:
            b = min(batch_size, remaining)
            batch = x.unsqueeze(0).expand(b, *x.shape)
            noise = torch.randn(batch.shape, generator=generator, device=x.device, dtype=x.dtype) * self.sigma
            stamped = (self.score_fn(batch + noise).float() > self.threshold).long().cpu()
            out += np.bincount(stamped.numpy(), minlength=2)
            remaining -= b
        return out

    def predict(
        self,
        x: torch.Tensor,
        n: int = 1000,
        alpha: float = 0.001,
        batch_size: int = 256,
        generator: torch.Generator | None = None,
    ) -> int:
        """Cohen's PREDICT: the top class if a two-sided binomial test rejects a tie at level
        ``alpha``, otherwise ABSTAIN."""
        c = self.counts(x, n, batch_size, generator)
        top = int(c.argmax())
        if binomtest(int(c[top]), int(c.sum()), 0.5).pvalue > alpha:
            return ABSTAIN
        return top

    def certify(
        self,
        x: torch.Tensor,
        n0: int = 100,
        n: int = 10_000,
        alpha: float = 0.001,
        batch_size: int = 256,
        generator: torch.Generator | None = None,
    ) -> Certificate:
        """Cohen's CERTIFY: guess the class from ``n0`` draws, bound its probability from
        ``n`` fresh draws, and return the certified L2 radius (or ABSTAIN)."""
        c0 = self.counts(x, n0, batch_size, generator)
        guess = int(c0.argmax())
        c = self.counts(x, n, batch_size, generator)
        p_lower = lower_confidence_bound(int(c[guess]), n, alpha)
        counts = (int(c[0]), int(c[1]))
        if p_lower <= 0.5:
            return Certificate(ABSTAIN, 0.0, p_lower, counts)
        return Certificate(guess, certified_radius(p_lower, self.sigma), p_lower, counts)


def certified_accuracy(certs: list[Certificate], labels: list[int], radii: np.ndarray) -> np.ndarray:
    """Fraction of inputs certified correct at each radius in ``radii``."""
    ok = np.array([c.prediction == y for c, y in zip(certs, labels)], dtype=bool)
    r = np.array([c.radius for c in certs], dtype=np.float64)
    return np.array([float(np.mean(ok & (r >= rad))) if len(certs) else 0.0 for rad in radii])
