"""Parameter samplers for the augmentations, and the stochastic-concatenation augmentation layer.

An :class:`Augmentation` pairs a pure function from :mod:`.functional` with a sampler that draws
per-sample parameters for a given strength in [0, 1] (0: identity, 1: the full training
range). :class:`AugmentLayer` draws a random subset of augmentations in random order each step
(DeepRAFT's "stochastic concatenation") with strengths set by a linear curriculum, and
returns a record from which the exact same augmentations can be replayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from deepraft.core.config import AugmentConfig
from deepraft.edits import functional as AF

Params = dict[str, torch.Tensor]


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _signed(n: int, mag: float, g: torch.Generator) -> torch.Tensor:
    return _uniform(n, -mag, mag, g)


@dataclass(frozen=True)
class Augmentation:
    name: str
    fn: Callable[..., torch.Tensor]
    sampler: Callable[[int, tuple[int, int], float, float, torch.Generator], Params]
    max_strength: float
    """Size of the full-strength range (meaning depends on the augmentation; see AUGMENTATIONS)."""

    def sample(
        self, n: int, size: tuple[int, int], strength: float, g: torch.Generator, max_strength: float | None = None
    ) -> Params:
        m = self.max_strength if max_strength is None else max_strength
        return self.sampler(n, size, float(strength), m, g)

    def apply(self, x: torch.Tensor, params: Params, **kwargs: Any) -> torch.Tensor:
        return self.fn(x, **params, **kwargs)


def _s_rotate(n, size, s, m, g):  # m: max angle in degrees
    return {"angle": _signed(n, m * s, g)}


def _s_crop(n, size, s, m, g):  # m: largest fraction of the area removed
    area = _uniform(n, 1.0 - m * s, 1.0, g)
    log_r = _signed(n, 0.2 * s, g)
    aspect = torch.exp(log_r)
    w = (area * aspect).sqrt().clamp(max=1.0)
    h = (area / aspect).sqrt().clamp(max=1.0)
    x0 = torch.rand(n, generator=g) * (1 - w)
    y0 = torch.rand(n, generator=g) * (1 - h)
    return {"box": torch.stack([x0, y0, w, h], dim=1)}


def _s_resize(n, size, s, m, g):  # m: largest fraction of the side removed
    return {"scale": _uniform(n, 1.0 - m * s, 1.0, g)}


def _s_color(n, size, s, m, g):  # m: largest change of each factor; hue uses m/5
    return {
        "brightness": 1.0 + _signed(n, m * s, g),
        "contrast": 1.0 + _signed(n, m * s, g),
        "saturation": 1.0 + _signed(n, m * s, g),
        "hue": _signed(n, m * s / 5.0, g),
    }


def _s_exposure(n, size, s, m, g):  # m: largest brightness factor (its inverse the smallest)
    return {"brightness": torch.exp(_signed(n, math.log(m) * s, g))}


def _s_defocus(n, size, s, m, g):  # m: largest radius in pixels
    return {"radius": _uniform(n, 0.0, m * s, g)}


def _s_blur(n, size, s, m, g):  # m: largest sigma in pixels
    return {"sigma": _uniform(n, 0.01, 0.01 + m * s, g)}


def _s_perspective(n, size, s, m, g):  # m: largest corner move, fraction of the side
    return {"offsets": _signed(n * 8, m * s, g).view(n, 4, 2)}


def _s_noise(n, size, s, m, g):  # m: largest sigma (images in [0,1])
    sigma = _uniform(n, 0.0, m * s, g)
    return {"eps": torch.randn(n, 3, *size, generator=g) * sigma.view(-1, 1, 1, 1)}


def _s_jpeg(n, size, s, m, g):  # m: largest drop of quality below 100
    return {"quality": _uniform(n, 100.0 - m * s, 100.0, g).round().clamp(1, 100)}


def _s_d4(n, size, s, m, g):  # at full strength every mirror and quarter turn, equally likely
    k = torch.randint(0, 8, (n,), generator=g)
    return {"k": torch.where(torch.rand(n, generator=g) < s, k, 0)}


def _s_jitter(n, size, s, m, g):  # m: largest move in pixels; scale within +-3 % at full strength
    return {"shift": _signed(2 * n, m * s, g).view(n, 2), "scale": torch.exp(_signed(n, 0.03 * s, g))}


def _fills(n, g):
    """Border colours: black, white, grey or a random colour."""
    kind = torch.randint(0, 4, (n,), generator=g)
    grey = torch.rand(n, generator=g).view(-1, 1).expand(n, 3)
    fill = torch.where((kind == 0).view(-1, 1), 0.0, torch.where((kind == 1).view(-1, 1), 1.0, grey))
    return torch.where((kind == 3).view(-1, 1), torch.rand(n, 3, generator=g), fill)


def _s_affine(n, size, s, m, g):  # m: largest rotation in degrees; scale 0.5..2 at full strength
    log_scale = _uniform(n, -0.7 * s, 0.7 * s, g)
    return {
        "angle": _signed(n, m * s, g) * (torch.rand(n, generator=g) < 0.7),
        "scale": torch.exp(log_scale),
        "aspect": torch.exp(_signed(n, 0.25 * s, g)),
        "shift": _signed(2 * n, 0.25 * s, g).view(n, 2),
        "fill": _fills(n, g),
    }


def _s_collage(n, size, s, m, g):  # m: smallest scale at full strength; the batch is [stamped; clean]
    half = max(1, n // 2)
    idx = torch.arange(n)
    return {
        "scale": _uniform(n, 1.0 - (1.0 - m) * s, 1.0 - 0.3 * (1.0 - m) * s, g),
        "pos": torch.rand(n, 2, generator=g),
        "background": half + ((idx % half) + 1) % half if n >= 4 else (idx + 1) % n,
    }


def _s_occlude(n, size, s, m, g):  # m: largest covered fraction of the area
    k = 3
    boxes = torch.zeros(n, k, 4)
    bar = torch.rand(n, generator=g) < 0.5
    frac = _uniform(n, 0.0, m * s, g)
    # a caption bar across the width, at the top or the bottom
    top = torch.rand(n, generator=g) < 0.5
    boxes[:, 0, 2] = torch.where(bar, 1.0, 0.0)
    boxes[:, 0, 3] = torch.where(bar, frac, 0.0)
    boxes[:, 0, 1] = torch.where(top, 0.0, 1.0 - frac)
    # or up to three stickers sharing the fraction
    side = (frac / k).sqrt()
    for j in range(k):
        sx, sy = torch.rand(n, generator=g) * (1 - side), torch.rand(n, generator=g) * (1 - side)
        boxes[:, j, :] = torch.where(bar.view(-1, 1), boxes[:, j, :], torch.stack([sx, sy, side, side], 1))
    return {"boxes": boxes, "colors": torch.rand(n, k, 3, generator=g)}


AUGMENTATIONS: dict[str, Augmentation] = {
    a.name: a
    for a in [
        Augmentation("rotate", AF.rotate, _s_rotate, 15.0),
        Augmentation("crop", AF.crop, _s_crop, 0.5),
        Augmentation("resize", AF.resize, _s_resize, 0.6),
        Augmentation("color", AF.color, _s_color, 0.5),
        Augmentation("exposure", AF.exposure, _s_exposure, 2.0),
        Augmentation("defocus", AF.defocus, _s_defocus, 2.0),
        Augmentation("blur", AF.gaussian_blur, _s_blur, 1.5),
        Augmentation("perspective", AF.perspective, _s_perspective, 0.08),
        Augmentation("noise", AF.noise, _s_noise, 0.05),
        Augmentation("jpeg", AF.jpeg, _s_jpeg, 70.0),
        Augmentation("d4", AF.d4, _s_d4, 1.0),
        Augmentation("jitter", AF.jitter, _s_jitter, 2.0),
        Augmentation("affine", AF.affine, _s_affine, 30.0),
        Augmentation("collage", AF.collage, _s_collage, 0.45),
        Augmentation("occlude", AF.occlude, _s_occlude, 0.2),
    ]
}


def draw_subset(n: int, k: int, weights: torch.Tensor | None, g: torch.Generator) -> list[int]:
    """``min(k, n)`` distinct indices of ``range(n)`` in random order. Without ``weights`` every
    subset is equally likely (a prefix of one permutation); with them, an index's chance to be
    drawn grows with its weight (successive draws without replacement), and the order of the
    drawn ones is shuffled again so that a weight decides *whether* an augmentation runs, not when."""
    if weights is None:
        return torch.randperm(n, generator=g)[:k].tolist()
    k = min(k, n)
    if k == 0:
        return []
    picked = torch.multinomial(weights, k, replacement=False, generator=g)
    return picked[torch.randperm(k, generator=g)].tolist()


def curriculum(step: int, start: int, end: int) -> float:
    """augmentation strength at ``step``: 0 before ``start``, 1 after ``end``, linear between."""
    if step < start:
        return 0.0
    if end <= start:
        return 1.0
    return min(1.0, (step - start) / (end - start))


@dataclass
class AugmentRecord:
    """What an :class:`AugmentLayer` did to one batch, enough to replay it exactly."""

    ops: list[tuple[str, Params]] = field(default_factory=list)
    keep_clean: torch.Tensor | None = None
    strength: float = 0.0


class AugmentLayer:
    """Stochastic concatenation of augmentations behind a curriculum."""

    def __init__(self, cfg: AugmentConfig) -> None:
        unknown = [n for n in [*cfg.names, *cfg.always] if n not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; known: {sorted(AUGMENTATIONS)}")
        stray = [n for n in cfg.weights if n not in cfg.names]
        if stray:
            raise ValueError(f"augment.weights names {stray}, which are not in augment.names {cfg.names}")
        bad = {n: w for n, w in cfg.weights.items() if not (math.isfinite(w) and w > 0)}
        if bad:
            raise ValueError(f"augment.weights must be finite and positive, got {bad}")
        self.cfg = cfg
        # the draw weights of ``names`` in order, made once (None: every subset equally likely)
        self.weights = (
            torch.tensor([cfg.weights.get(n, 1.0) for n in cfg.names], dtype=torch.float64) if cfg.weights else None
        )

    def sample(self, n: int, size: tuple[int, int], step: int, g: torch.Generator) -> AugmentRecord:
        cfg = self.cfg
        strength = curriculum(step, cfg.aug_start, cfg.aug_end) if cfg.enabled else 0.0
        record = AugmentRecord(strength=strength)
        if strength <= 0.0 or not (cfg.names or cfg.always):
            return record
        names = list(cfg.always)
        if cfg.names:
            k = int(torch.randint(0, cfg.max_ops + 1, (1,), generator=g))
            names += [cfg.names[i] for i in draw_subset(len(cfg.names), k, self.weights, g)]
        for name in names:
            record.ops.append((name, AUGMENTATIONS[name].sample(n, size, strength, g, cfg.max_strength.get(name))))
        record.keep_clean = torch.rand(n, generator=g) < cfg.p_clean
        return record

    def apply(self, x: torch.Tensor, record: AugmentRecord) -> torch.Tensor:
        return replay(x, record, jpeg_mode=self.cfg.jpeg_mode)

    def __call__(self, x: torch.Tensor, step: int, g: torch.Generator) -> tuple[torch.Tensor, AugmentRecord]:
        record = self.sample(x.shape[0], (x.shape[-2], x.shape[-1]), step, g)
        return self.apply(x, record), record


def replay(x: torch.Tensor, record: AugmentRecord, jpeg_mode: str = "real_ste") -> torch.Tensor:
    """Apply the augmentations of ``record`` to ``x`` (the same parameters, the same order), in float32
    with autocast off whatever the caller runs under: under CUDA's bfloat16 autocast the stamped
    batch arrives in bfloat16, where the hue turn's colour-space inverse and the antialiased
    resizes of ``resize`` and ``collage`` have no kernel (the training step failed on a GPU), and
    an edit of a picture needs float32's precision anyway."""
    with torch.autocast(x.device.type, enabled=False):
        x = x.float()
        y = x
        for name, params in record.ops:
            kwargs = {"mode": jpeg_mode} if name == "jpeg" else {}
            y = AUGMENTATIONS[name].apply(y, params, **kwargs)
        if record.keep_clean is not None and record.ops:
            keep = record.keep_clean.to(x.device).view(-1, 1, 1, 1)
            y = torch.where(keep, x, y)
    return y


def sample_negatives(
    n: int, size: tuple[int, int], cfg: AugmentConfig, g: torch.Generator, strength: float = 1.0
) -> dict[str, torch.Tensor] | None:
    """Which clean samples of a batch become forgeries (see ``StampModel.forward``): ``swap``
    (another picture's stamp) with probability ``p_swap * strength``, else ``use_pattern`` with
    probability ``p_pattern * strength``: a unit-RMS grating of random frequency, direction and
    phase, or band-limited noise, of RMS 1, or with ``pattern_db`` > 0 a random 0..pattern_db dB
    more (the forger's patterns are stronger than the stamp). The curriculum's ``strength`` ramps
    them in with the augmentations, so the scanner first finds the stamp, then learns what merely looks
    like it. None when neither is configured."""
    if cfg.p_swap <= 0 and cfg.p_pattern <= 0:
        return None
    u = torch.rand(n, generator=g)
    p_swap, p_pattern = cfg.p_swap * strength, cfg.p_pattern * strength
    swap = u < p_swap
    use = (~swap) & (u < p_swap + p_pattern)
    h, w = size
    grat = AF.grating(
        n, h, w, _uniform(n, 4.0, 0.4 * max(h, w), g), _uniform(n, 0.0, math.pi, g), _uniform(n, 0.0, 2 * math.pi, g)
    )
    noise = torch.randn(n, 1, h, w, generator=g)
    noise = AF.gaussian_blur(noise, _uniform(n, 0.5, 2.5, g))
    noise = noise / noise.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    pick = (torch.rand(n, generator=g) < 0.5).view(-1, 1, 1, 1)
    pattern = torch.where(pick, grat, noise)
    pattern = pattern / pattern.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    if cfg.pattern_db > 0:  # drawn only then: configs without it keep their random stream
        pattern = pattern * (10 ** (_uniform(n, 0.0, cfg.pattern_db, g) / 20)).view(-1, 1, 1, 1)
    out = {"swap": swap, "use_pattern": use, "pattern": pattern}
    return out
