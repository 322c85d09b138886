"""Randomized smoothing: prediction with abstention and certified L2 radii (Cohen et al.)."""

from deepraft.evaluation.smoothing.core import (
    ABSTAIN,
    Certificate,
    Smooth,
    certified_accuracy,
    certified_radius,
    lower_confidence_bound,
)

__all__ = ["ABSTAIN", "Certificate", "Smooth", "certified_accuracy", "certified_radius", "lower_confidence_bound"]
