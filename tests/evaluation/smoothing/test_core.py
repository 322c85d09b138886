"""Randomized smoothing on a toy linear classifier whose smoothed answer is known in closed form.

For f(x) = 1[w.x > b], P(f(x + e) = 1) = Phi((w.x - b) / (sigma |w|)) and the smoothed
classifier's exact certified radius is the distance to the hyperplane, |w.x - b| / |w|."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from deepraft.evaluation.smoothing import ABSTAIN, Smooth, certified_accuracy, certified_radius, lower_confidence_bound

W = torch.tensor([3.0, 4.0])  # |w| = 5


def score(x: torch.Tensor) -> torch.Tensor:
    return x @ W


def test_lower_bound_known_values():
    assert lower_confidence_bound(0, 10, 0.05) == 0.0
    assert lower_confidence_bound(10, 10, 0.05) == pytest.approx(0.05 ** (1 / 10))
    assert lower_confidence_bound(500, 1000, 0.001) < 0.5
    assert certified_radius(0.4, 1.0) == 0.0
    assert certified_radius(norm.cdf(1.0), 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("dist", [0.3, 0.6, -0.45])
def test_certify_matches_closed_form(dist):
    sigma = 0.5
    x = W / 5 * dist  # signed distance `dist` from the hyperplane w.x = 0
    smooth = Smooth(score, sigma=sigma, threshold=0.0)
    cert = smooth.certify(x, n0=100, n=20_000, alpha=0.001, generator=torch.Generator().manual_seed(0))
    assert cert.prediction == (1 if dist > 0 else 0)
    true_radius = abs(dist)
    assert cert.radius <= true_radius  # sound (with probability 1 - alpha)
    assert cert.radius > true_radius - 0.06  # and tight with n = 20,000
    p = norm.cdf(abs(dist) / sigma)
    assert cert.p_lower <= p and cert.p_lower > p - 0.02


def test_abstain_on_the_boundary():
    smooth = Smooth(score, sigma=0.5)
    x = torch.zeros(2)
    g = torch.Generator().manual_seed(1)
    assert smooth.certify(x, n0=100, n=2000, generator=g).prediction == ABSTAIN
    assert smooth.predict(x, n=2000, generator=g) == ABSTAIN
    assert smooth.predict(W / 5 * 0.5, n=2000, generator=g) == 1


def test_certified_accuracy_curve():
    smooth = Smooth(score, sigma=0.5)
    g = torch.Generator().manual_seed(2)
    xs = [W / 5 * d for d in (0.2, 0.5, -0.4, 0.0)]
    certs = [smooth.certify(x, 100, 5000, 0.001, generator=g) for x in xs]
    acc = certified_accuracy(certs, [1, 1, 0, 1], np.array([0.0, 0.25, 0.45, 1.0]))
    assert acc.tolist() == [0.75, 0.5, 0.25, 0.0]
