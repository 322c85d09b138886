"""Detection metrics as pure functions of score arrays (higher score: 'stamped')."""

from __future__ import annotations

import numpy as np

from deepraft.evaluation.calibrate import threshold_at_fpr


def rate_above(scores: np.ndarray, threshold: float) -> float:
    """Fraction of ``scores`` strictly above ``threshold`` (TPR on positives, FPR on negatives)."""
    s = np.asarray(scores, dtype=np.float64)
    return float(np.mean(s > threshold)) if s.size else float("nan")


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float) -> float:
    """TPR at the threshold that lets at most ``fpr`` of the negatives through."""
    return rate_above(pos, threshold_at_fpr(neg, fpr))


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve = P(score_pos > score_neg) + P(tie) / 2 (Mann-Whitney U)."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(allv.size, dtype=np.float64)
    ranks[order] = np.arange(1, allv.size + 1)
    # average ranks over ties
    sorted_v = allv[order]
    i = 0
    while i < sorted_v.size:
        j = i
        while j + 1 < sorted_v.size and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        if j > i:
            ranks[order[i : j + 1]] = (i + j + 2) / 2.0
        i = j + 1
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def roc_curve(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) points of the ROC curve, thresholds swept over all scores."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    thr = np.unique(np.concatenate([pos, neg, [np.inf]]))[::-1]
    fpr = np.array([np.mean(neg >= t) for t in thr])
    tpr = np.array([np.mean(pos >= t) for t in thr])
    return np.concatenate([[0.0], fpr, [1.0]]), np.concatenate([[0.0], tpr, [1.0]])


def paper_accuracy(pos: np.ndarray, neg: np.ndarray, threshold: float = 0.0) -> float:
    """DeepRAFT's reported metric: mean of stamped and clean accuracy at one threshold (the
    paper used probability 0.5, i.e. logit 0)."""
    return 0.5 * (rate_above(pos, threshold) + 1.0 - rate_above(neg, threshold))
