"""Layer 2, the model in use: the :class:`~deepraft.runtime.stamper.Stamper` (protect, scan) and the
scan engines (PyTorch, ONNX Runtime)."""
