"""Pure tensor maths shared by training and inference: resizing, masks, stamp strength."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from deepraft.core.imageio import work_shape
from deepraft.core.measures import LUMA_BT601


def resize_to_work(x: torch.Tensor, size: int, mode: str = "square") -> torch.Tensor:
    """Resize a (B,3,H,W) batch to its working copy (:func:`work_shape`), antialiased (as
    Pillow's BILINEAR)."""
    shape = work_shape(x.shape[-2], x.shape[-1], size, mode)
    if tuple(x.shape[-2:]) == shape:
        return x
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=True)


def interp_indices(
    n_out: int, n_in: int, device: torch.device | None = None, start: int = 0, stop: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For output positions ``start:stop`` of a 1-D linear resize from ``n_in`` to ``n_out``
    with ``align_corners=False`` (``F.interpolate``'s convention): the two source indices and
    the weight of the second, ``out = (1 - w1) * in[i0] + w1 * in[i1]``."""
    stop = n_out if stop is None else stop
    dst = torch.arange(start, stop, dtype=torch.float64, device=device)
    src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    return i0, i1, src - i0.to(torch.float64)


def interp_matrix(
    n_out: int,
    n_in: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
    start: int = 0,
    stop: int | None = None,
) -> torch.Tensor:
    """Rows ``start:stop`` of the (n_out, n_in) matrix of :func:`interp_indices`."""
    stop = n_out if stop is None else stop
    i0, i1, w1 = interp_indices(n_out, n_in, device, start, stop)
    m = torch.zeros(stop - start, n_in, dtype=torch.float64, device=device)
    rows = torch.arange(stop - start, device=device)
    m.index_put_((rows, i0), 1.0 - w1, accumulate=True)
    m.index_put_((rows, i1), w1, accumulate=True)
    return m.to(dtype)


def rescale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """(B,C,h,w) ``x`` resized by ``factor`` on each side (at least 8 pixels), antialiased
    bilinear: how a read at another scale sees a working copy. ``x`` itself for 1."""
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    size = (max(8, round(h * factor)), max(8, round(w * factor)))
    return F.interpolate(x, size, mode="bilinear", antialias=True)


def upsample(r: torch.Tensor, height: int, width: int, row_start: int = 0, row_stop: int | None = None) -> torch.Tensor:
    """Bilinear resize of a (B,C,h,w) residual to (height,width), rows ``row_start:row_stop``
    only, so a huge image can be stamped strip by strip without a full-size float copy."""
    ay = interp_matrix(height, r.shape[-2], r.dtype, r.device, row_start, row_stop)
    ax = interp_matrix(width, r.shape[-1], r.dtype, r.device)
    return torch.einsum("yh,bchw,xw->bcyx", ay, r, ax)


class StripUpsampler:
    """Bilinear upsampling of one (3,h,w) residual to (height,width), handed out as
    (rows, width, 3) HWC strips of ``scale * r + offset``: the column pass is done once at
    (h, width); each strip is one small matrix product of its few source rows, written once.
    The same result as :func:`upsample`, without a dense row matrix and without a full-size
    float copy."""

    def __init__(self, r: torch.Tensor, height: int, width: int, scale: float = 1.0, offset: float = 0.0) -> None:
        hwc = (r * scale).permute(1, 2, 0)
        ax = interp_matrix(width, r.shape[-1], r.dtype, r.device)
        self.cols = torch.einsum("xw,hwc->hxc", ax, hwc).add_(offset).contiguous()
        self.height = height

    def rows(self, start: int, stop: int) -> torch.Tensor:
        ay = interp_matrix(self.height, self.cols.shape[0], self.cols.dtype, self.cols.device, start, stop)
        used = ay.any(dim=0).nonzero()  # the few source rows this strip reads
        k0, k1 = int(used[0]), int(used[-1]) + 1
        flat = self.cols[k0:k1].reshape(k1 - k0, -1)
        return (ay[:, k0:k1] @ flat).view(stop - start, *self.cols.shape[1:])


def local_std(y: torch.Tensor, window: int) -> torch.Tensor:
    """Standard deviation of (B,1,h,w) ``y`` over ``window`` x ``window`` neighbourhoods."""
    pad = window // 2
    yp = F.pad(y, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(yp, window, stride=1)
    return (F.avg_pool2d(yp * yp, window, stride=1) - mean * mean).clamp(min=0.0).sqrt()


def texture_mask(
    x: torch.Tensor,
    power: float = 0.5,
    window: int = 7,
    floor: float = 0.02,
    normalize: bool = True,
    ceiling: float | None = None,
) -> torch.Tensor:
    """(B,1,h,w) mask that is larger where the luminance is textured: ``(std + floor)**power``
    of the local luminance, smoothed over 3x3. With ``normalize``, each mask has unit RMS (the
    stamp's strength is set afterwards); otherwise it is absolute, so a flat picture gets a
    weak stamp everywhere instead of the same stamp spread over its few textured pixels.
    The stamp hides in texture and shows on flat areas (sky, skin, walls): a small ``floor``
    and ``power`` near 1 keep it out of flat areas; ``ceiling`` caps the local deviation, so
    that a hard edge does not get a blotch."""
    std = local_std(to_luma(x), window)
    if ceiling is not None:
        std = std.clamp(max=ceiling)
    m = (std + floor) ** power
    m = F.avg_pool2d(F.pad(m, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    if not normalize:
        return m
    return m / m.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()


def low_pass(r: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with std ``sigma`` pixels (reflected borders, kernel of +-3 sigma): the same
    values as kornia's ``gaussian_blur2d``, without importing kornia. Written as weighted sums of
    shifted slices (offsets from the ends, never from the size), so an ONNX export of a model
    that uses it takes inputs of any size."""
    half = max(1, math.ceil(3 * sigma))
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-half, half + 1)]
    taps = [t / sum(taps) for t in taps]
    mode = "reflect" if min(r.shape[-2], r.shape[-1]) > half else "replicate"

    def along(y: torch.Tensor, dim: int) -> torch.Tensor:
        pad = (half, half, 0, 0) if dim == -1 else (0, 0, half, half)
        y = F.pad(y, pad, mode=mode)
        out = None
        for i, t in enumerate(taps):
            end = 2 * half - i
            part = y[..., i : -end or None] if dim == -1 else y[..., i : -end or None, :]
            out = part * t if out is None else out + part * t
        assert out is not None
        return out

    return along(along(r, -1), -2)


def high_pass(r: torch.Tensor, sigma: float) -> torch.Tensor:
    """``r`` minus its Gaussian blur of std ``sigma``: no local mean, no broad smooth field."""
    return r - low_pass(r, sigma)


def to_luma(r: torch.Tensor) -> torch.Tensor:
    """(B,3,h,w) -> (B,1,h,w) luminance (Rec. 601 weights)."""
    wr, wg, wb = LUMA_BT601
    return wr * r[:, 0:1] + wg * r[:, 1:2] + wb * r[:, 2:3]


def limit_crest(r: torch.Tensor, crest: float) -> torch.Tensor:
    """Smoothly limit each residual of a batch to ``crest`` times its own RMS:
    k * tanh(r / k), k = crest * RMS(r) (identity for small values)."""
    k = crest * r.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(1e-12).sqrt()
    return k * torch.tanh(r / k)


def scale_to_psnr(r: torch.Tensor, psnr: float, reference_size: int | None = None) -> torch.Tensor:
    """Rescale each residual in a batch so that its PSNR (peak 1) equals ``psnr`` dB, measured
    on the residual itself or, with ``reference_size``, on its bilinear upsampling to that
    square size: upsampling smooths fine patterns away, so the PSNR that a picture larger than
    the working copy gets is the upsampled one (pictures larger still get slightly more)."""
    target_rms = 10.0 ** (-psnr / 20.0)
    ref = (
        r
        if reference_size is None
        else F.interpolate(r, size=(reference_size, reference_size), mode="bilinear", align_corners=False)
    )
    rms = ref.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(1e-12).sqrt()
    return r * (target_rms / rms)


def cap_to_psnr(r: torch.Tensor, psnr: float) -> torch.Tensor:
    """Scale down each residual of a batch whose PSNR (peak 1) is below ``psnr`` dB to exactly
    ``psnr``; weaker residuals are left as they are."""
    target_rms = 10.0 ** (-psnr / 20.0)
    rms = r.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(1e-12).sqrt()
    return r * (target_rms / rms).clamp(max=1.0)


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Per-sample PSNR in dB between two (B,C,H,W) batches."""
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(peak * peak / mse.clamp(min=1e-20))


def quantize_ste(x: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Round to 8-bit levels in the forward pass, identity gradient (straight-through)."""
    return x + ((x * levels).round() / levels - x).detach()


def keyed_score(bit_logits: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """How well (B,k) bit logits match a key of k bits in {0, 1} ((k,) or (B,k)): the bit logits'
    projection on the key's signs over their norm, sum(s * l) / |l|, in [-sqrt(k), sqrt(k)].

    Whatever the logits, over keys drawn at random it has mean 0, variance 1 and, by Hoeffding's
    inequality, P(score >= t) <= exp(-t^2 / 2): a picture whose bits are unrelated to the key
    (any unstamped picture, however stamp-like it looks) passes t = 3.72 with probability at most
    1e-3, and t = 5.26 at most 1e-6. Holds per picture for a key the scanner never learned from;
    on a fixed key, bits that clean pictures share break it, which is what calibration measures."""
    signs = key.to(bit_logits.dtype) * 2.0 - 1.0
    lf = bit_logits.float()
    return ((lf * signs).sum(dim=-1) / lf.pow(2).sum(dim=-1).add(1e-12).sqrt()).to(bit_logits.dtype)


def keyed_threshold(fpr: float, reads: int = 1) -> float:
    """The keyed score at which the largest of ``reads`` reads passes a picture unrelated to the
    key with probability at most ``fpr``: sqrt(2 ln(reads / fpr)), the union of the Hoeffding
    bounds of :func:`keyed_score` (3.72 for one read at 1e-3)."""
    return math.sqrt(2.0 * math.log(reads / fpr))


def stronger_read(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The stronger of two reads of the same copies: the larger logit of (B,) zero-bit reads;
    for (B,k) bit reads, each row from the read whose logits have the larger norm (the read in
    which the scanner found the message, where a larger logit would mix two reads' bits)."""
    if a.dim() == 1:
        return torch.maximum(a, b)
    pick = a.float().pow(2).sum(dim=1, keepdim=True) >= b.float().pow(2).sum(dim=1, keepdim=True)
    return torch.where(pick, a, b)
