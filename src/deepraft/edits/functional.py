"""Attacks as pure functions of (images, parameters).

Every function takes a (B,3,H,W) batch in [0,1] and per-sample parameter tensors, keeps the
size, and is differentiable with respect to the images (JPEG: see :func:`jpeg`). Samplers in
:mod:`deepraft.training.augment` draw the parameters, so an evaluation can replay them exactly.
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

from deepraft.models.functional import to_luma


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
        small = F.interpolate(
            x[i : i + 1],
            size=(max(8, round(h * s)), max(8, round(w * s))),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        out.append(F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False))
    return torch.cat(out)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return to_luma(x)


def hue_shift(x: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``hue`` (B,) turns, as a rotation of the chroma plane in YIQ space
    (a linear map: ~20x cheaper than kornia's HSV round trip on CPU, same visual effect)."""
    theta = hue.to(x) * 2 * math.pi
    cos, sin = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    rot = torch.cat(
        [torch.cat([one, zero, zero], 2), torch.cat([zero, cos, -sin], 2), torch.cat([zero, sin, cos], 2)], 1
    )
    m = from_yiq @ rot @ to_yiq
    return torch.einsum("bij,bjhw->bihw", m, x)


def exposure(x: torch.Tensor, brightness: torch.Tensor) -> torch.Tensor:
    """Multiplicative brightness (B,), clipped to [0, 1] (PIL's and torchvision's brightness)."""
    return (x * _per_sample(brightness, x)).clamp(0, 1)


def color(
    x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor
) -> torch.Tensor:
    """Colour jitter with torchvision's definitions: multiplicative brightness, contrast and
    saturation as blends with the mean grey / the grey image, and a hue shift in turns, all (B,)."""
    y = exposure(x, brightness)
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


def d4(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """One of the eight mirrors and quarter turns per sample: ``k`` (B,) in 0..7 turns the image
    by ``k % 4`` quarter turns, then mirrors it left-right when ``k >= 4``. Square images
    keep their size; others are turned only by half turns and mirrors."""
    out = []
    square = x.shape[-1] == x.shape[-2]
    for i in range(x.shape[0]):
        ki = int(k[i])
        turns = ki % 4 if square else 2 * (ki % 2)
        y = torch.rot90(x[i : i + 1], turns, dims=(-2, -1)) if turns else x[i : i + 1]
        out.append(torch.flip(y, dims=(-1,)) if ki >= 4 else y)
    return torch.cat(out)


def affine(
    x: torch.Tensor,
    angle: torch.Tensor,
    scale: torch.Tensor,
    aspect: torch.Tensor,
    shift: torch.Tensor,
    fill: torch.Tensor,
) -> torch.Tensor:
    """Rotate by ``angle`` degrees, scale by ``scale`` (> 1 zooms in: a crop; < 1 shrinks the
    picture inside the frame: a border), stretch by ``aspect`` (width / height factor), move by
    ``shift`` (B,2) fractions of the size, all (B,); uncovered areas take the colour ``fill``
    (B,3): black corners of a rotation, the border of a letterbox."""
    from kornia.geometry.transform import warp_affine

    b, _, h, w = x.shape
    a = angle.to(x) * (math.pi / 180.0)
    sx = scale.to(x) * aspect.to(x).sqrt()
    sy = scale.to(x) / aspect.to(x).sqrt()
    cos, sin = a.cos(), a.sin()
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    tx = cx + shift[:, 0].to(x) * w
    ty = cy + shift[:, 1].to(x) * h
    m = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    m[:, 0, 0], m[:, 0, 1] = sx * cos, -sy * sin
    m[:, 1, 0], m[:, 1, 1] = sx * sin, sy * cos
    m[:, 0, 2] = tx - (m[:, 0, 0] * cx + m[:, 0, 1] * cy)
    m[:, 1, 2] = ty - (m[:, 1, 0] * cx + m[:, 1, 1] * cy)
    both = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
    warped = warp_affine(both, m, (h, w), mode="bilinear", padding_mode="zeros", align_corners=False)
    cover = warped[:, 3:4]
    return warped[:, :3] + (1.0 - cover) * fill.to(x).view(b, 3, 1, 1)


def jitter(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Move each picture by a fraction of a pixel and rescale it slightly about its centre:
    ``shift`` (B,2) in pixels (x, y), ``scale`` (B,) near 1; the edges are mirrored in, so no
    border appears. Where the pixel grid falls is all that changes: what a light crop or a
    resize does to the working copy's grid, however small."""
    from kornia.geometry.transform import warp_affine

    b, _, h, w = x.shape
    s = scale.to(x)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    m = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    m[:, 0, 0], m[:, 1, 1] = s, s
    m[:, 0, 2] = cx + shift[:, 0].to(x) - s * cx
    m[:, 1, 2] = cy + shift[:, 1].to(x) - s * cy
    return warp_affine(x, m, (h, w), mode="bilinear", padding_mode="reflection", align_corners=False)


def collage(x: torch.Tensor, scale: torch.Tensor, pos: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Paste each picture, shrunk by ``scale`` (B,), into row ``background`` (B,) of the batch
    (another picture) at ``pos`` (B,2), the top-left corner as a fraction of the free room."""
    h, w = x.shape[-2:]
    out = []
    for i in range(x.shape[0]):
        s = float(scale[i])
        ph, pw = max(8, round(h * s)), max(8, round(w * s))
        small = F.interpolate(x[i : i + 1], size=(ph, pw), mode="bilinear", align_corners=False, antialias=True)
        top, left = round(float(pos[i, 1]) * (h - ph)), round(float(pos[i, 0]) * (w - pw))
        base = x[int(background[i]) : int(background[i]) + 1]
        row = torch.cat([base[..., top : top + ph, :left], small, base[..., top : top + ph, left + pw :]], dim=-1)
        out.append(torch.cat([base[..., :top, :], row, base[..., top + ph :, :]], dim=-2))
    return torch.cat(out)


def occlude(x: torch.Tensor, boxes: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """Paint opaque rectangles over each picture: ``boxes`` (B,K,4) = (x0, y0, w, h) fractions
    of the size (a caption bar, stickers), ``colors`` (B,K,3); boxes of width 0 are unused."""
    h, w = x.shape[-2:]
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w
    b = boxes.to(x)
    out = x
    for k in range(b.shape[1]):
        x0, y0, bw, bh = (b[:, k, j].view(-1, 1, 1, 1) for j in range(4))
        inside = (
            (xs.view(1, 1, 1, w) >= x0)
            & (xs.view(1, 1, 1, w) < x0 + bw)
            & (ys.view(1, 1, h, 1) >= y0)
            & (ys.view(1, 1, h, 1) < y0 + bh)
        )
        out = torch.where(inside, colors[:, k].to(x).view(-1, 3, 1, 1), out)
    return out


def grating(
    n: int, height: int, width: int, cycles: torch.Tensor, angle: torch.Tensor, phase: torch.Tensor
) -> torch.Tensor:
    """(n,1,H,W) unit-RMS sinusoidal gratings: ``cycles`` per longer side, along
    direction ``angle`` (radians), ``phase`` (radians), all (n,)."""
    ys = torch.arange(height, dtype=torch.float32).view(1, height, 1) / max(height, width)
    xs = torch.arange(width, dtype=torch.float32).view(1, 1, width) / max(height, width)
    c = cycles.view(-1, 1, 1).float() * 2 * math.pi
    t = xs * angle.cos().view(-1, 1, 1) + ys * angle.sin().view(-1, 1, 1)
    return (math.sqrt(2.0) * torch.sin(c * t + phase.view(-1, 1, 1))).unsqueeze(1)
