"""Working copies: the small pictures the encoder and the scanner read, made from decoded
pictures, batched and scored by a stamper's scan engine.

:class:`WorkCopies` is what the :class:`~deepraft.runtime.stamper.Stamper` protects and scans
through, and what measurement code reaches for when it needs the copies themselves (attacks
differentiate through them, benchmarks time them, calibration scores pictures on a card that
has no threshold yet): ``stamper.copies``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from deepraft.core.imageio import Picture, work_copy
from deepraft.models import StampModel


def centre_crop(a: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[top : top + h, left : left + w]


class WorkCopies:
    """Working copies of ``model`` on ``device``; ``read`` runs the scanner's read (the scan
    engine: :class:`~deepraft.runtime.engine.OnnxRead`, or None for the model's own)."""

    def __init__(
        self, model: StampModel, device: torch.device, read: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        self.model = model
        self.device = device
        self.read = read

    @property
    def work_size(self) -> int:
        return self.model.cfg.work_size

    @property
    def work_mode(self) -> str:
        return self.model.cfg.work_mode

    @property
    def scan_size(self) -> int:
        """``work_size`` of the copies the scanner reads (see ``StampModel.scan_size``)."""
        return self.model.scan_size

    def arrays(self, pics: Sequence[Picture], size: int | None = None) -> list[np.ndarray]:
        """The (h,w,3) uint8 working copies of ``pics`` (see :func:`deepraft.core.imageio.work_copy`),
        at ``size`` in place of ``work_size`` when given."""
        return [work_copy(p.rgb, size or self.work_size, self.work_mode) for p in pics]

    def scan_arrays(self, pics: Sequence[Picture]) -> list[np.ndarray]:
        """The (h,w,3) uint8 copies a scan reads: the working copies, or for a model that reads
        several scales, copies at the largest (:attr:`scan_size`)."""
        return self.arrays(pics, self.scan_size)

    def batch(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """(B,3,h,w) float copies in [0,1] on the device. Copies of different shapes (mode
        'area', pictures of different aspect) are centre-cropped to their common size so that
        they batch (the scanner is fully convolutional)."""
        h = min(a.shape[0] for a in arrays)
        w = min(a.shape[1] for a in arrays)
        cropped = [centre_crop(a, h, w) for a in arrays]
        t = torch.from_numpy(np.stack(cropped)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        return t.contiguous()

    def work_batch(self, pics: Sequence[Picture]) -> torch.Tensor:
        """The working copies of ``pics`` as one batch (:meth:`batch`)."""
        return self.batch(self.arrays(pics))

    def scan_batch(self, pics: Sequence[Picture]) -> torch.Tensor:
        """The scan copies :meth:`StampModel.score` reads, as one batch (:meth:`batch`)."""
        return self.batch(self.scan_arrays(pics))

    def score(self, copies: torch.Tensor, smoothed: bool = True) -> torch.Tensor:
        """:meth:`StampModel.score` of (B,3,h,w) scan copies in [0,1], run by the scan engine
        (not differentiable through ONNX Runtime: gradient attacks call the model's own; query
        attacks call this)."""
        return self.model.score(copies, smoothed=smoothed, read=self.read)

    @torch.inference_mode()
    def score_arrays(self, arrays: Sequence[np.ndarray], batch_size: int = 64) -> list[float]:
        """Scores of (h,w,3) uint8 scan copies, batched by shape (each keeps its whole frame)."""
        out: list[float] = [0.0] * len(arrays)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, a in enumerate(arrays):
            groups.setdefault(a.shape, []).append(i)
        for idx in groups.values():
            for j in range(0, len(idx), batch_size):
                part = idx[j : j + batch_size]
                scores = self.score(self.batch([arrays[i] for i in part])).float().cpu().tolist()
                for i, sc in zip(part, scores):
                    out[i] = float(sc)
        return out

    def score_pictures(self, pics: Sequence[Picture], batch_size: int = 64) -> list[float]:
        """Scores (scanner logits; smoothed for a smoothing model) of decoded pictures: what a
        scan compares with the card's threshold, without one."""
        return self.score_arrays(self.scan_arrays(pics), batch_size)
