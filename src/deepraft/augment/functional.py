"""Attacks as pure functions of (images, parameters).

Every function takes a (B,3,H,W) batch in [0,1] and per-sample parameter tensors, keeps the
size, and is differentiable with respect to the images (JPEG: see :func:`jpeg`). Samplers in
:mod:`deepraft.augment.attacks` draw the parameters, so an evaluation can replay them exactly.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import filter2d, gaussian_blur2d
from kornia.geometry.transform import (
    crop_and_resize,
    get_perspective_transform,
    warp_perspective,
)
from kornia.geometry.transform import rotate as k_rotate
from PIL import Image
from torch.nn import functional as F


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate by ``angle`` degrees (B,) about the centre; uncovered corners reflect the image
    (as a platform's rotate-and-crop would not leave black corners either)."""
    return k_rotate(x, angle.to(x), padding_mode="reflection", align_corners=False)


def crop(x: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Crop boxes (B,4) = (x0, y0, w, h) as fractions of the image, resized back to (H,W)."""
    h, w = x.shape[-2:]
    b = box.to(x)
    x0, y0 = b[:, 0] * (w - 1), b[:, 1] * (h - 1)
    x1, y1 = (b[:, 0] + b[:, 2]) * (w - 1), (b[:, 1] + b[:, 3]) * (h - 1)
    corners = torch.stack(
        [torch.stack([x0, y0], -1), torch.stack([x1, y0], -1), torch.stack([x1, y1], -1), torch.stack([x0, y1], -1)],
        dim=1,
    )
    return crop_and_resize(x, corners, (h, w), align_corners=True)


def resize(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Downscale each image by ``scale`` (B,) (antialiased) and bring it back to (H,W): the
    detail lost by a resize, on a tensor whose size does not change."""
    h, w = x.shape[-2:]
    out = []
    for i in range(x.shape[0]):
        s = float(scale[i])
        if s >= 0.999:
            out.append(x[i : i + 1])
            continue
        small = F.interpolate(x[i : i + 1], size=(max(8, round(h * s)), max(8, round(w * s))),
                              mode="bilinear", align_corners=False, antialias=True)
        out.append(F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False))
    return torch.cat(out)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def hue_shift(x: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``hue`` (B,) turns, as a rotation of the chroma plane in YIQ space
    (a linear map: ~20x cheaper than kornia's HSV round trip on CPU, same visual effect)."""
    theta = hue.to(x) * 2 * math.pi
    cos, sin = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    rot = torch.cat([torch.cat([one, zero, zero], 2), torch.cat([zero, cos, -sin], 2),
                     torch.cat([zero, sin, cos], 2)], 1)
    m = from_yiq @ rot @ to_yiq
    return torch.einsum("bij,bjhw->bihw", m, x)


def color(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor,
          saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Colour jitter with torchvision's definitions: multiplicative brightness, contrast and
    saturation as blends with the mean grey / the grey image, and a hue shift in turns, all (B,)."""
    y = (x * _per_sample(brightness, x)).clamp(0, 1)
    c = _per_sample(contrast, x)
    y = (c * y + (1 - c) * _gray(y).mean(dim=(1, 2, 3), keepdim=True)).clamp(0, 1)
    s = _per_sample(saturation, x)
    y = (s * y + (1 - s) * _gray(y)).clamp(0, 1)
    return hue_shift(y, hue).clamp(0, 1)


def disk_kernels(radius: torch.Tensor, size: int) -> torch.Tensor:
    """(B,size,size) normalised disk kernels with antialiased edges of the given radii."""
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    d = (xx**2 + yy**2).sqrt().to(radius)
    k = (radius.view(-1, 1, 1) + 0.5 - d).clamp(0, 1)
    return k / k.sum(dim=(1, 2), keepdim=True)


def defocus(x: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Defocus (disk) blur of ``radius`` pixels (B,)."""
    size = 2 * math.ceil(float(radius.max())) + 3
    return filter2d(x, disk_kernels(radius, size).to(x), border_type="reflect")


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` pixels (B,)."""
    s = sigma.to(x).clamp(min=1e-3)
    ks = 2 * math.ceil(3 * float(s.max())) + 1
    return gaussian_blur2d(x, (ks, ks), torch.stack([s, s], dim=1), border_type="reflect")


def perspective(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move the four corners by ``offsets`` (B,4,2), fractions of the size, and warp."""
    h, w = x.shape[-2:]
    src = torch.tensor([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=x.dtype, device=x.device)
    src = src.unsqueeze(0).expand(x.shape[0], 4, 2)
    scale = torch.tensor([w - 1, h - 1], dtype=x.dtype, device=x.device)
    dst = src + offsets.to(x) * scale
    m = get_perspective_transform(src, dst)
    return warp_perspective(x, m, (h, w), padding_mode="reflection", align_corners=True)


def noise(x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Add pixel noise ``eps`` (B,3,H,W) (already scaled by its sigma) and clip."""
    return (x + eps.to(x)).clamp(0, 1)


def _jpeg_real(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    arr = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = np.empty_like(arr)
    for i, a in enumerate(arr):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=int(round(float(quality[i]))))
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255.0


def jpeg(x: torch.Tensor, quality: torch.Tensor, mode: str = "real_ste") -> torch.Tensor:
    """JPEG compression at ``quality`` (B,) in [1,100].

    ``real_ste`` runs the real codec (libjpeg via Pillow, 4:2:0 as most platforms use) and
    passes the gradient straight through: the scanner sees exactly what a platform's encoder
    produces, and on CPU it is ~15x cheaper than the differentiable model of the codec.
    ``differentiable`` uses kornia's differentiable JPEG (Reich et al. 2024) whose gradient
    models the quantisation.
    """
    if mode == "real_ste":
        return x + (_jpeg_real(x, quality) - x).detach()
    if mode == "differentiable":
        return jpeg_codec_differentiable(x.clamp(0, 1), quality.to(x))
    raise ValueError(f"unknown jpeg mode {mode!r}")
