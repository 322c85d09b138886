"""Layer 2, training: augmentations (what training applies to stamped and clean copies), the
photo data sets, the one training loop, losses and checkpoints. Nothing here is imported by
``import deepraft`` or ``deepraft.load()``."""
