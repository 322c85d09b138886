"""Stamp models: encoders, scanners, the joint model and its factory."""

from deepraft.models import encoders, scanners  # noqa: F401  (register the architectures)
from deepraft.models.registry import ENCODERS, SCANNERS, create_encoder, create_scanner
from deepraft.models.stamp import StampModel, build_model, require_zero_bit

__all__ = ["ENCODERS", "SCANNERS", "StampModel", "build_model", "create_encoder", "create_scanner", "require_zero_bit"]
