"""Scanners: image at working resolution -> one logit ("carries the stamp")."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_scanner


def scanner_input(x: torch.Tensor) -> torch.Tensor:
    """(B,6,h,w): a (B,3,h,w) batch in [0,1] mapped to [-1,1], beside its 3x3 high-pass (the
    stamp is small next to the image content)."""
    x = x * 2.0 - 1.0
    blurred = nn.functional.avg_pool2d(nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return torch.cat([x, x - blurred], dim=1)


def conv_stack(channels: tuple[int, ...], stem_stride: int) -> tuple[nn.Sequential, int]:
    """The scanners' feature extractor on :func:`scanner_input`: per entry of ``channels``, a
    strided 3x3 conv (the first with ``stem_stride``, the others 2) and a 3x3 conv, each with
    batch norm and GELU. Returns it and its number of output channels."""
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
    return nn.Sequential(*layers), cin


class ConvScanner(nn.Module):
    """Strided conv stack, global average pooling (tolerant to where the stamp sits) and a
    linear head. The first layer sees a high-passed copy as well, since the stamp is small
    next to the image content."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 96, 128, 160), stem_stride: int = 1) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        self.features, cout = conv_stack(channels, stem_stride)
        self.head = nn.Linear(cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(scanner_input(x)).mean(dim=(2, 3))).squeeze(1)


class MapScanner(nn.Module):
    """Fully convolutional scanner: a map of local logits ("is this neighbourhood stamped?"),
    pooled into one score by the mean of its top ``top_fraction`` of positions.

    The map makes the score indifferent to where the stamp sits and how much of the frame it
    fills: a border, a caption bar, stickers or a collage add unstamped area, which the top
    fraction ignores as long as the stamped part covers more than it. The first layer sees a
    high-passed copy as well, since the stamp is small next to the image content."""

    def __init__(
        self, channels: tuple[int, ...] = (24, 48, 64, 96), top_fraction: float = 0.25, stem_stride: int = 1
    ) -> None:
        super().__init__()
        if not 0 < top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
        self.top_fraction = float(top_fraction)
        self.features, cout = conv_stack(tuple(int(c) for c in channels), stem_stride)
        self.head = nn.Conv2d(cout, 1, 1)

    def local_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B,1,h',w') local logits of a (B,3,h,w) batch in [0,1]."""
        return self.head(self.features(scanner_input(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return top_mean(self.local_map(x).flatten(1), self.top_fraction)


def top_mean(v: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean of the largest ``fraction`` of each row of (B,N) ``v`` (at least one value).

    Written with a sort and a rank mask rather than ``topk(k)``, so that an ONNX export keeps
    ``k`` a function of the input's size (working copies of any shape)."""
    ranked = v.sort(dim=1, descending=True).values
    ones = torch.ones_like(v)
    rank = ones.cumsum(dim=1) - 1.0  # 0, 1, ..., N-1 as tensors: no size frozen into a graph
    k = torch.clamp(torch.round(ones.sum(dim=1, keepdim=True) * fraction), min=1.0)
    keep = (rank < k).to(v.dtype)
    return (ranked * keep).sum(dim=1) / k.squeeze(1)


@register_scanner("mapnet")
def mapnet(channels: tuple[int, ...] = (24, 48, 64, 96), top_fraction: float = 0.25, stem_stride: int = 1) -> nn.Module:
    """Fully convolutional scanner pooled over its top ``top_fraction`` of local logits."""
    return MapScanner(channels=channels, top_fraction=top_fraction, stem_stride=stem_stride)


@register_scanner("mapnet_tiny")
def mapnet_tiny(top_fraction: float = 0.25) -> nn.Module:
    return MapScanner(channels=(4, 8, 8), top_fraction=top_fraction)


@register_scanner("convnet")
def convnet(channels: tuple[int, ...] = (32, 64, 96, 128, 160), stem_stride: int = 1) -> nn.Module:
    """Conv scanner; ``stem_stride`` 2 makes the first layer strided (4x cheaper)."""
    return ConvScanner(channels=channels, stem_stride=stem_stride)


@register_scanner("convnet_tiny")
def convnet_tiny() -> nn.Module:
    return ConvScanner(channels=(4, 8, 8))
