"""Layer 1, edits: the benign changes a forwarder makes to a picture (Pillow, :mod:`.benign`), their
differentiable tensor versions that training augmentations use (:mod:`.functional`), and the
evaluation grids over them (:mod:`.grids`: names and strengths, data)."""
