"""Scanners: image at working resolution -> one logit ("carries the stamp")."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_scanner


class ConvScanner(nn.Module):
    """Strided conv stack, global average pooling (tolerant to where the stamp sits) and a
    linear head. The first layer sees a high-passed copy as well, since the stamp is small
    next to the image content."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 96, 128, 160), stem_stride: int = 1) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        layers: list[nn.Module] = []
        cin = 6
        for i, c in enumerate(channels):
            stride = int(stem_stride) if i == 0 else 2
            layers += [
                nn.Conv2d(cin, c, 3, stride=stride, padding=1),
                nn.BatchNorm2d(c),
                nn.GELU(),
                nn.Conv2d(c, c, 3, padding=1),
                nn.BatchNorm2d(c),
                nn.GELU(),
            ]
            cin = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 2.0 - 1.0
        blurred = nn.functional.avg_pool2d(
            nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1
        )
        h = self.features(torch.cat([x, x - blurred], dim=1))
        return self.head(h.mean(dim=(2, 3))).squeeze(1)


@register_scanner("convnet")
def convnet(channels: tuple[int, ...] = (32, 64, 96, 128, 160), stem_stride: int = 1) -> nn.Module:
    """Conv scanner; ``stem_stride`` 2 makes the first layer strided (4x cheaper)."""
    return ConvScanner(channels=channels, stem_stride=stem_stride)


@register_scanner("convnet_tiny")
def convnet_tiny() -> nn.Module:
    return ConvScanner(channels=(4, 8, 8))
