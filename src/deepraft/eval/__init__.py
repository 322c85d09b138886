"""Evaluation: metrics and checks run on real photos.

Names: ``headline`` is the model card's short check (PSNR, TPR/FPR at JPEG 50) run by
``deepraft export`` and ``benchmarks/check_model.py``; ``--quick`` is a smaller evaluation grid
(``distortions.QUICK_GRID``); ``report`` writes an evaluation folder's plots and ``report.md``;
``paper_tables`` builds ``deepraft report``'s tables beside the paper's numbers.
"""

from .headline import HeadlineReport, headline_check, psnr_uint8

__all__ = ["HeadlineReport", "headline_check", "psnr_uint8"]
