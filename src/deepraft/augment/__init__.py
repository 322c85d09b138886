"""Differentiable attacks (pure functions + samplers) and the stochastic attack layer."""

from . import functional
from .attacks import ATTACKS, Attack, AttackLayer, AttackRecord, curriculum, replay, sample_negatives

__all__ = ["ATTACKS", "Attack", "AttackLayer", "AttackRecord", "curriculum", "functional", "replay", "sample_negatives"]
