"""Scanners: image at working resolution -> one logit ("carries the stamp")."""

from __future__ import annotations

import torch
from torch import nn

from deepraft.models.registry import register_scanner


def scanner_input(x: torch.Tensor) -> torch.Tensor:
    """(B,6,h,w): a (B,3,h,w) batch in [0,1] mapped to [-1,1], beside its 3x3 high-pass (the
    stamp is small next to the image content)."""
    x = x * 2.0 - 1.0
    blurred = nn.functional.avg_pool2d(nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return torch.cat([x, x - blurred], dim=1)


class BlurPool(nn.Module):
    """Anti-aliased subsampling (Zhang, "Making convolutional networks shift-invariant again",
    2019): a 3x3 binomial blur of each channel, then every ``stride``-th pixel. After a
    stride-1 conv and its nonlinearity, which turn a fine stamp into a smooth energy map, the
    blur keeps that map from aliasing, so the output hardly depends on where the grid falls.
    No parameters (the kernel is a non-persistent buffer)."""

    kernel: torch.Tensor

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.channels, self.stride = int(channels), int(stride)
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16.0
        self.register_buffer("kernel", k.expand(self.channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
        return nn.functional.conv2d(x, self.kernel.to(x.dtype), stride=self.stride, groups=self.channels)


def conv_stack(channels: tuple[int, ...], stem_stride: int, antialias: bool = False) -> tuple[nn.Sequential, int]:
    """The scanners' feature extractor on :func:`scanner_input`: per entry of ``channels``, a
    strided 3x3 conv (the first with ``stem_stride``, the others 2) and a 3x3 conv, each with
    batch norm and GELU. ``antialias``: each strided conv runs at stride 1 and a
    :class:`BlurPool` subsamples after its GELU (same parameters and names, so the weights of a
    model without it load; 4x the cost of those convs). Returns it and its number of output
    channels."""
    layers: list[nn.Module] = []
    conv = nn.Conv2d
    cin = 6
    for i, c in enumerate(channels):
        stride = int(stem_stride) if i == 0 else 2
        pool = antialias and stride > 1
        # the pool shares the GELU's slot: the layers keep their indices, and so their names
        act: nn.Module = nn.Sequential(nn.GELU(), BlurPool(c, stride)) if pool else nn.GELU()
        layers += [conv(cin, c, 3, stride=1 if pool else stride, padding=1), nn.BatchNorm2d(c), act]
        layers += [conv(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.GELU()]
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
        self,
        channels: tuple[int, ...] = (24, 48, 64, 96),
        top_fraction: float = 0.25,
        stem_stride: int = 1,
        antialias: bool = False,
        message_bits: int = 0,
    ) -> None:
        super().__init__()
        if not 0 < top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
        self.top_fraction = float(top_fraction)
        self.message_bits = int(message_bits)
        self.features, cout = conv_stack(tuple(int(c) for c in channels), stem_stride, bool(antialias))
        self.head = nn.Conv2d(cout, max(1, self.message_bits), 1)

    def local_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B,C,h',w') local logits of a (B,3,h,w) batch in [0,1]: C = 1 ("stamped here"), or
        one per message bit."""
        return self.head(self.features(scanner_input(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) stamp logits, or with ``message_bits`` (B, message_bits) bit logits (the local
        map's mean: every stamped neighbourhood carries the whole message)."""
        if self.message_bits:
            return self.local_map(x).mean(dim=(2, 3))
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
def mapnet(
    channels: tuple[int, ...] = (24, 48, 64, 96),
    top_fraction: float = 0.25,
    stem_stride: int = 1,
    antialias: bool = False,
    message_bits: int = 0,
) -> nn.Module:
    """Fully convolutional scanner pooled over its top ``top_fraction`` of local logits;
    ``antialias``: blur-pooled strides; ``message_bits``: reads that many bits instead."""
    return MapScanner(channels, top_fraction, stem_stride, antialias, message_bits)


@register_scanner("mapnet_tiny")
def mapnet_tiny(top_fraction: float = 0.25, antialias: bool = False, message_bits: int = 0) -> nn.Module:
    return MapScanner((4, 8, 8), top_fraction, antialias=antialias, message_bits=message_bits)


@register_scanner("convnet")
def convnet(channels: tuple[int, ...] = (32, 64, 96, 128, 160), stem_stride: int = 1) -> nn.Module:
    """Conv scanner; ``stem_stride`` 2 makes the first layer strided (4x cheaper)."""
    return ConvScanner(channels=channels, stem_stride=stem_stride)


@register_scanner("convnet_tiny")
def convnet_tiny() -> nn.Module:
    return ConvScanner(channels=(4, 8, 8))
