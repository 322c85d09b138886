"""``deepraft export MODEL --onnx DIR``: the encoder and the scanner as ONNX graphs for mobile
and edge clients.

    DIR/encoder.onnx   work (B,3,s,s) float32 in [0,1] -> residual (B,3,s,s), strength and mask applied
    DIR/scanner.onnx   work (B,3,s,s) float32 in [0,1] -> score (B,) logits
    DIR/onnx.json      working size, calibrated thresholds and how to use the two graphs

How a client uses them: :data:`USAGE`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from deepraft.core.fileio import atomic_write_bytes
from deepraft.models import StampModel
from deepraft.runtime.engine import ScannerRead, export_copy, export_graph

if TYPE_CHECKING:
    from deepraft.runtime.stamper import Stamper

USAGE = (
    "A client squashes the picture to the s x s working copy (bilinear, antialiased), runs the\n"
    "encoder, upsamples the residual bilinearly to the full size and adds it (protect), or runs the\n"
    "scanner on the working copy and compares the score with the threshold (scan)."
)
USAGE_AREA = (
    "A client resizes the picture to its working copy (bilinear, antialiased): the same aspect ratio,\n"
    "about s*s pixels (h = round(H*k), w = round(W*k), k = s / sqrt(H*W)), runs the encoder on it,\n"
    "upsamples the residual bilinearly to the full size and adds it (protect), or runs the scanner on\n"
    "the working copy and compares the score with the threshold (scan). Both graphs take any h, w."
)
"""How to use the two graphs (written into ``onnx.json``; a constant, not the module docstring,
which ``python -OO`` strips)."""


class _Encoder(nn.Module):
    def __init__(self, model: StampModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, work: torch.Tensor) -> torch.Tensor:
        return self.model.residual(work)


def export_onnx(stamper: Stamper, out_dir: Path, opset: int = 17) -> list[Path]:
    """Write ``encoder.onnx``, ``scanner.onnx`` and ``onnx.json`` of ``stamper``'s model under
    ``out_dir``; returns their paths. The stamper's model is left as it was (device, mode)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = export_copy(stamper.model)
    s = stamper.work_size
    area = stamper.work_mode == "area"
    paths = []
    for name, module, out_name in (("encoder", _Encoder(model), "residual"), ("scanner", ScannerRead(model), "score")):
        path = out_dir / f"{name}.onnx"
        export_graph(module, str(path), out_name, s, area, opset)
        paths.append(path)
    card = stamper.card
    meta = {
        "model": card.name,
        "work_size": s,
        "work_mode": stamper.work_mode,
        "thresholds": card.thresholds,
        "default_fpr": card.default_fpr,
        "opset": opset,
        "usage": USAGE_AREA if area else USAGE,
    }
    if len(card.model.scan_scales) > 1:
        meta["scan_scales"] = {
            "scales": list(card.model.scan_scales),
            "note": "the calibrated score is the largest of scanner.onnx's scores on working copies of "
            "work_size * scale for each scale (each made from the picture as above)",
        }
    if card.model.smoothing_std > 0 and card.model.scan_draws > 0:
        meta["smoothing"] = {
            "sigma": card.model.smoothing_std,
            "draws": card.model.scan_draws,
            "note": "the calibrated score is the mean of scanner.onnx over `draws` inputs "
            "work + N(0, sigma^2) noise (deepraft uses fixed draws, torch seed 0)",
        }
    atomic_write_bytes(out_dir / "onnx.json", (json.dumps(meta, indent=2) + "\n").encode())
    return paths + [out_dir / "onnx.json"]
