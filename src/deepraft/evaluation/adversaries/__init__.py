"""Attacks by an attacker: adversarial removal and forging on the scanner, adaptive to randomized
smoothing (:mod:`.adversarial`, :mod:`.runner`), and model-free forgeries and removals
(:mod:`.forgery`).

"Attack" means three things in this package; this is the third:

1. training augmentations (:mod:`deepraft.training`, ``ATTACKS``): differentiable edits applied while
   training, so the stamp survives them;
2. evaluation edits (:mod:`deepraft.edits`, the benign-edit registry, and the grid over it in
   :mod:`deepraft.edits.grids`): what ordinary people do to a picture;
3. adversarial attacks and forgeries (here): what someone trying to remove or forge a stamp does.
"""

from deepraft.evaluation.adversaries.adversarial import (
    ATTACK_NAMES,
    AttackResult,
    AttackSanityError,
    TwoClassScanner,
    check_gradients,
    make_attack,
    run_attack,
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
