"""The joint stamp model: an encoder and a scanner composed with the working-resolution
resize, the perceptual mask and the strength control."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import torch
from torch import nn

from deepraft.core.config import ModelConfig
from deepraft.models import functional as Fn
from deepraft.models.registry import create_encoder, create_scanner


def check_scan_scales(scales: Sequence[float], smoothing_std: float = 0.0) -> None:
    """Raise ValueError unless ``scales`` can be the reads of a deployed score: positive, 1
    among them, and one scale only for a smoothing model."""
    scales = tuple(scales)
    if 1.0 not in scales or min(scales) <= 0:
        raise ValueError(f"scan_scales must be positive and include 1, got {scales}")
    if len(scales) > 1 and smoothing_std > 0:
        raise ValueError("scan_scales: a smoothing model reads one scale (its noise lives in one working copy)")


class TrainingPass(NamedTuple):
    """What :meth:`StampModel.forward` returns."""

    stamped: torch.Tensor
    """The stamped pictures, before quantisation and edits."""
    logits: torch.Tensor
    """The scanner's logits, [stamped..., clean...]."""
    copies: torch.Tensor
    """The copies read, [stamped..., clean...]: quantised and edited, before the smoothing noise
    (another scanner, a teacher, reads the same copies with :meth:`StampModel.scan`)."""
    messages: torch.Tensor | None = None
    """A keyed model's (``message_bits``) random bits in {0, 1}, one row per stamped picture."""


class StampModel(nn.Module):
    def __init__(self, cfg: ModelConfig, encoder: nn.Module, scanner: nn.Module) -> None:
        super().__init__()
        check_scan_scales(cfg.scan_scales, cfg.smoothing_std)
        if cfg.message_bits < 0 or (cfg.message_bits and cfg.smoothing_std > 0):
            raise ValueError(f"message_bits must be >= 0 and without smoothing, got {cfg.message_bits}")
        self.cfg = cfg
        self.encoder = encoder
        self.scanner = scanner

    # -- stamping ---------------------------------------------------------------------
    def residual(self, work: torch.Tensor, message: torch.Tensor | None = None) -> torch.Tensor:
        """Stamp residual at working resolution for a (B,3,s,s) working copy in [0,1]; a keyed
        model (``message_bits``) writes ``message``, (B, message_bits) bits in {0, 1}."""
        cfg = self.cfg
        r = self.encoder(work, message) if cfg.message_bits else self.encoder(work)
        if cfg.luma_only:
            r = Fn.to_luma(r).expand(-1, 3, -1, -1)
        if cfg.residual_highpass > 0:
            r = Fn.high_pass(r, cfg.residual_highpass)
        if cfg.residual_activation == "tanh":
            r = torch.tanh(r)
        elif cfg.residual_activation == "unit_tanh":
            r = torch.tanh(r / r.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(1e-20).sqrt())
        elif cfg.residual_activation != "none":
            raise ValueError(f"unknown residual_activation {cfg.residual_activation!r}")
        if cfg.residual_blur > 0:
            r = Fn.low_pass(r, cfg.residual_blur)
        if cfg.mask == "texture":
            m = Fn.texture_mask(
                work,
                cfg.mask_power,
                cfg.mask_window,
                cfg.mask_floor,
                normalize=cfg.mask_gain is None,
                ceiling=cfg.mask_ceiling,
            )
            r = r * (m if cfg.mask_gain is None else cfg.mask_gain * m)
        elif cfg.mask != "none":
            raise ValueError(f"unknown mask {cfg.mask!r}")
        if cfg.crest_factor is not None:
            r = Fn.limit_crest(r, cfg.crest_factor)
        if cfg.psnr_target is not None:
            if cfg.psnr_mode == "cap":
                r = Fn.cap_to_psnr(r, cfg.psnr_target)
            elif cfg.psnr_mode == "exact":
                ref = 2 * cfg.work_size if cfg.work_mode == "square" else None
                r = Fn.scale_to_psnr(r, cfg.psnr_target, reference_size=ref)
            else:
                raise ValueError(f"unknown psnr_mode {cfg.psnr_mode!r}")
        return r

    def work(self, x: torch.Tensor) -> torch.Tensor:
        """The working copy of a (B,3,H,W) batch (see :func:`functional.work_shape`)."""
        return Fn.resize_to_work(x, self.cfg.work_size, self.cfg.work_mode)

    def stamp(
        self, x: torch.Tensor, boost: float = 1.0, as_work: bool = False, message: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Stamp a (B,3,H,W) batch in [0,1]; the output has the input's size. ``boost`` > 1
        makes the stamp stronger than the model's setting (a training warm-up only).
        ``as_work``: ``x`` is already at the working copy's scale (training crops that are
        windows of a working copy), so it is stamped as it is, not resized first. ``message``:
        see :meth:`residual`."""
        r = self.residual(x if as_work else self.work(x), message)
        if boost != 1.0:
            r = r * boost
        if r.shape[-2:] != x.shape[-2:]:
            r = Fn.upsample(r, x.shape[-2], x.shape[-1])
        return (x + r).clamp(0.0, 1.0)

    def forward(
        self,
        x: torch.Tensor,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        negatives: dict[str, torch.Tensor] | None = None,
        boost: float = 1.0,
        as_work: bool = False,
        scales: Sequence[float] = (1.0,),
    ) -> TrainingPass:
        """Training pass: stamp ``x``, quantise to 8 bits (straight-through), put the stamped
        and the clean copies through ``augment``, and scan them with the smoothing noise, each
        logit the largest of the reads at ``scales`` (see :meth:`scan`).
        ``negatives`` (see :func:`deepraft.training.sample_negatives`) turns some clean copies
        into forgeries, still labelled clean: another picture's stamp (``swap``) or a fixed
        pattern at the stamp's strength (``pattern``, ``use_pattern``).
        ``boost``, ``as_work``: see :meth:`stamp` (with ``as_work`` the scanner too reads the
        augmented copies as they are). A keyed model stamps each picture with random bits drawn
        from ``generator`` (returned as ``messages``)."""
        messages = None
        if self.cfg.message_bits:
            shape = (x.shape[0], self.cfg.message_bits)
            messages = torch.randint(0, 2, shape, generator=generator, device=x.device).to(x.dtype)
        stamped = self.stamp(x, boost, as_work, messages)
        clean = x if negatives is None else forge(x, stamped - x, negatives)
        both = torch.cat([Fn.quantize_ste(stamped), Fn.quantize_ste(clean)])
        if augment is not None:
            both = augment(both)
        logits = self.scan(both, noise=True, generator=generator, as_work=as_work, scales=scales)
        return TrainingPass(stamped, logits, both, messages)

    # -- scanning ---------------------------------------------------------------------
    @property
    def scan_size(self) -> int:
        """``work_size`` of the copies :meth:`score` takes: the working copy at the largest of
        ``scan_scales``."""
        return round(self.cfg.work_size * max(self.cfg.scan_scales))

    def score(
        self,
        copies: torch.Tensor,
        chunk: int = 256,
        smoothed: bool = True,
        read: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The deployed score of (B,3,h,w) scan copies (working copies at :attr:`scan_size`): the
        largest over ``scan_scales`` of the scanner's logit on the copy resized to that scale.
        For a smoothing model, the logit's mean over ``scan_draws`` fixed draws of the smoothing
        noise (the same draws for every image: a score does not depend on the batch or call);
        ``smoothed=False`` leaves that noise out (the base classifier that attacks and
        certification wrap). ``read``: what computes :meth:`read` (an inference engine running
        the same graph, :class:`deepraft.runtime.engine.OnnxRead`); differentiable in ``copies`` with
        the default."""
        read = read or self.read
        out: torch.Tensor | None = None
        for _, work in self.scale_copies(copies):
            sc = self._score_one(work, chunk, read) if smoothed else read(work)
            out = sc if out is None else Fn.stronger_read(out, sc)
        assert out is not None
        return out

    def scale_copies(self, copies: torch.Tensor) -> Iterator[tuple[float, torch.Tensor]]:
        """(scale, working copy) for each of ``scan_scales``: the scan copies (at
        :attr:`scan_size`) resized to that scale, as :meth:`score` reads them."""
        top = max(self.cfg.scan_scales)
        for s in self.cfg.scan_scales:
            yield s, Fn.rescale(copies, s / top)

    def _score_one(self, work: torch.Tensor, chunk: int, read: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        draws = self.cfg.scan_draws if self.cfg.smoothing_std > 0 else 0
        if draws <= 0:
            return read(work)
        eps = self._scan_noise(draws, work)
        per = max(1, chunk // draws)
        out = []
        for i in range(0, work.shape[0], per):
            w = work[i : i + per]
            noisy = (w.unsqueeze(1) + eps.unsqueeze(0)).flatten(0, 1)
            out.append(read(noisy).view(w.shape[0], draws).mean(dim=1))
        return torch.cat(out)

    def _scan_noise(self, draws: int, like: torch.Tensor) -> torch.Tensor:
        key = (draws, tuple(like.shape[1:]), like.device, like.dtype)
        if getattr(self, "_noise_key", None) != key:
            g = torch.Generator().manual_seed(0)
            eps = torch.randn((draws, *like.shape[1:]), generator=g) * self.cfg.smoothing_std
            self._noise, self._noise_key = eps.to(device=like.device, dtype=like.dtype), key
        return self._noise

    def scan(
        self,
        x: torch.Tensor,
        noise: bool = False,
        generator: torch.Generator | None = None,
        as_work: bool = False,
        scales: Sequence[float] = (1.0,),
    ) -> torch.Tensor:
        """Logits for a (B,3,H,W) batch in [0,1] of any size. ``noise`` adds the smoothing
        noise N(0, smoothing_std^2) to the working copy (training, randomized smoothing).
        ``as_work``: ``x`` is read as it is (see :meth:`stamp`). ``scales``: the largest of the
        reads of the working copy resized by each factor, as the deployed score reads a scan
        copy (training at (0.5, 1) puts the half-scale read of clean pictures in the loss)."""
        work = x if as_work else self.work(x)
        if noise and self.cfg.smoothing_std > 0:
            eps = torch.randn(work.shape, generator=generator, device=work.device, dtype=work.dtype)
            work = work + eps * self.cfg.smoothing_std
        out: torch.Tensor | None = None
        for s in scales:
            logits = self.read(Fn.rescale(work, s))
            out = logits if out is None else Fn.stronger_read(out, logits)
        if out is None:
            raise ValueError("scan: scales is empty")
        return out

    def read(self, work: torch.Tensor) -> torch.Tensor:
        """The scanner's logits for (B,3,h,w) working copies; with ``scan_transpose``, the larger
        of the logits of each copy and of its transpose (mirrored along the diagonal): a quarter
        turn is then a mirror of what the scanner reads, and mirrors are learned from data. A
        keyed model's reads are (B, message_bits) bit logits (see :func:`functional.stronger_read`)."""
        logits = self.scanner(work)
        if self.cfg.scan_transpose:
            logits = Fn.stronger_read(logits, self.scanner(work.transpose(-2, -1)))
        return logits


def forge(x: torch.Tensor, residual: torch.Tensor, negatives: dict[str, torch.Tensor]) -> torch.Tensor:
    """Clean pictures ``x`` with forged stamps: where ``negatives['swap']`` is set, the residual
    of the next picture of the batch (``residual.roll(1)``); where ``use_pattern`` is set,
    ``pattern`` times the picture's own stamp RMS (a unit-RMS pattern lands at the stamp's
    strength)."""
    dev = x.device
    swap = negatives["swap"].to(dev).view(-1, 1, 1, 1)
    use = negatives["use_pattern"].to(dev).view(-1, 1, 1, 1)
    rms = residual.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    pattern = negatives["pattern"].to(device=dev, dtype=x.dtype)
    pattern = pattern * rms
    add = torch.where(swap, residual.roll(1, dims=0), torch.zeros_like(residual))
    add = torch.where(use, pattern.expand_as(residual), add)
    return (x + add).clamp(0.0, 1.0)


def require_zero_bit(cfg: ModelConfig, where: object) -> None:
    """ValueError naming ``where`` for a keyed study model (``message_bits``): the runtime, its
    cards and their calibration read zero-bit scores."""
    if cfg.message_bits:
        raise ValueError(f"{where}: a keyed study model (message_bits); the runtime reads zero-bit models")


def build_model(cfg: ModelConfig) -> StampModel:
    keyed = {"message_bits": cfg.message_bits} if cfg.message_bits else {}
    try:
        encoder = create_encoder(cfg.encoder, work_size=cfg.work_size, **cfg.encoder_kwargs, **keyed)
        scanner = create_scanner(cfg.scanner, **cfg.scanner_kwargs, **keyed)
    except TypeError as exc:
        if keyed and "message_bits" in str(exc):
            raise ValueError(f"message_bits: {cfg.encoder!r} or {cfg.scanner!r} carries no message") from exc
        raise
    return StampModel(cfg, encoder, scanner)
