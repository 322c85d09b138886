import numpy as np
import pytest

from deepraft.evaluation.metrics import paper_accuracy, rate_above, roc_auc, roc_curve, tpr_at_fpr


def test_perfect_scanner():
    pos, neg = np.linspace(5, 6, 100), np.linspace(-6, -5, 2000)
    assert roc_auc(pos, neg) == 1.0
    assert tpr_at_fpr(pos, neg, 1e-3) == 1.0
    assert paper_accuracy(pos, neg) == 1.0


def test_random_scanner():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(size=20000), rng.normal(size=20000)
    assert roc_auc(pos, neg) == pytest.approx(0.5, abs=0.01)
    assert tpr_at_fpr(pos, neg, 1e-2) == pytest.approx(1e-2, abs=0.004)
    assert paper_accuracy(pos, neg) == pytest.approx(0.5, abs=0.01)


def test_known_roc():
    pos, neg = np.array([0.9, 0.8, 0.4]), np.array([0.7, 0.3, 0.2, 0.1])
    # pairs pos > neg: 0.9 beats 4, 0.8 beats 4, 0.4 beats 3 -> 11 of 12
    assert roc_auc(pos, neg) == pytest.approx(11 / 12)
    assert roc_auc(np.array([1.0]), np.array([1.0])) == 0.5  # a tie counts half
    fpr, tpr = roc_curve(pos, neg)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(11 / 12)
    assert rate_above(pos, 0.8) == pytest.approx(1 / 3)
    # at FPR 1/4 exactly one negative (0.7) may pass: threshold 0.3 -> TPR 1
    assert tpr_at_fpr(pos, neg, 0.25) == 1.0
    assert tpr_at_fpr(pos, neg, 0.2) == pytest.approx(2 / 3)
