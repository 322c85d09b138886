"""Adversarial attacks on the scanner: removal and forging, adaptive to randomized smoothing."""

from .adversarial import (
                          ATTACK_NAMES,
                          AttackResult,
                          AttackSanityError,
                          TwoClassScanner,
                          check_gradients,
                          make_attack,
                          run_attack,
)

__all__ = ["ATTACK_NAMES", "AttackResult", "AttackSanityError", "TwoClassScanner", "check_gradients", "make_attack",
           "run_attack"]
