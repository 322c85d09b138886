"""Stamp encoders: image at working resolution -> residual at working resolution."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from deepraft.models.registry import register_encoder


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.GELU(),
    )


class UNetEncoder(nn.Module):
    """A small U-Net predicting an image-adaptive residual, plus a learned constant pattern
    (``bias``) that gives the stamp a content-independent component the scanner can lock onto
    quickly. The overall strength is set outside (``ModelConfig.psnr_target``)."""

    def __init__(
        self,
        channels: tuple[int, ...] = (24, 48, 96),
        work_size: int = 128,
        stem_stride: int = 1,
        learned_pattern: bool = True,
        message_bits: int = 0,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        self.stem_stride = int(stem_stride)
        self.message_bits = int(message_bits)
        self.downs = nn.ModuleList()
        cin = 3 + self.message_bits  # the message enters as constant planes beside the picture
        for c in channels:
            self.downs.append(_block(cin, c))
            cin = c
        self.ups = nn.ModuleList()
        for c_skip in reversed(channels[:-1]):
            self.ups.append(_block(cin + c_skip, c_skip))
            cin = c_skip
        self.head = nn.Conv2d(cin, 3, 1)
        self.bias = nn.Parameter(torch.randn(1, 3, work_size, work_size) * 0.1) if learned_pattern else None

    def forward(self, x: torch.Tensor, message: torch.Tensor | None = None) -> torch.Tensor:
        """Residual for (B,3,h,w) ``x`` in [0,1]; with ``message_bits``, ``message`` is the
        (B, message_bits) bits in {0, 1} the stamp carries."""
        h = x * 2.0 - 1.0
        if self.stem_stride > 1:
            h = F.avg_pool2d(h, self.stem_stride)
        if self.message_bits:
            if message is None or message.shape != (x.shape[0], self.message_bits):
                got = None if message is None else tuple(message.shape)
                raise ValueError(f"this encoder stamps a ({x.shape[0]}, {self.message_bits}) message, got {got}")
            planes = (message.to(h.dtype) * 2.0 - 1.0)[:, :, None, None].expand(-1, -1, *h.shape[-2:])
            h = torch.cat([h, planes], dim=1)
        skips = []
        for i, down in enumerate(self.downs):
            if i > 0:
                h = F.avg_pool2d(h, 2)
            h = down(h)
            skips.append(h)
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = up(torch.cat([h, skip], dim=1))
        out = self.head(h)
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.bias is None:
            return out
        bias: torch.Tensor = self.bias
        if bias.shape[-2:] != x.shape[-2:]:
            bias = F.interpolate(bias, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out + bias


@register_encoder("unet")
def unet(channels: tuple[int, ...] = (24, 48, 96), work_size: int = 128, stem_stride: int = 1) -> nn.Module:
    """U-Net encoder; ``stem_stride`` > 1 computes the image-adaptive part at a coarser grid
    (cheaper), while the learned constant pattern keeps the full working resolution."""
    return UNetEncoder(channels=channels, work_size=work_size, stem_stride=stem_stride)


@register_encoder("unet_fc")
def unet_fc(
    channels: tuple[int, ...] = (16, 32, 64), work_size: int = 128, stem_stride: int = 1, message_bits: int = 0
) -> nn.Module:
    """Fully convolutional U-Net: the stamp is a function of the picture alone (and of the
    ``message_bits`` bits it carries, if any), with no learned constant pattern (a fixed additive
    pattern can be averaged out of many stamped pictures, forged onto others and filtered away).
    Any working-copy size and aspect ratio."""
    return UNetEncoder(channels, work_size, stem_stride, learned_pattern=False, message_bits=message_bits)


@register_encoder("unet_tiny")
def unet_tiny(work_size: int = 128) -> nn.Module:
    return UNetEncoder(channels=(4, 8), work_size=work_size)


@register_encoder("unet_fc_tiny")
def unet_fc_tiny(work_size: int = 128, message_bits: int = 0) -> nn.Module:
    return UNetEncoder(channels=(4, 8), work_size=work_size, learned_pattern=False, message_bits=message_bits)
