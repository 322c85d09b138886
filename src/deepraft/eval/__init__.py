"""Evaluation: metrics and checks run on real photos."""

from .quick import QuickReport, psnr_uint8, quick_check

__all__ = ["QuickReport", "psnr_uint8", "quick_check"]
