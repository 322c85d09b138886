"""Typed configuration for models and training runs.

Every run resolves its configuration once (YAML file + command-line overrides) into a
:class:`TrainConfig`; the resolved dictionary is stored in every checkpoint and model card,
so a model can be rebuilt from its files alone.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelConfig:
    """Architecture of the joint stamp model (encoder + scanner)."""

    encoder: str = "unet"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    scanner: str = "convnet"
    scanner_kwargs: dict[str, Any] = field(default_factory=dict)
    work_size: int = 128
    """Size of the working copy that the encoder and the scanner read: its side (``work_mode``
    'square') or the square root of its area ('area')."""
    work_mode: str = "square"
    """'square': every picture squashed to work_size x work_size (the first models); 'area':
    aspect ratio kept, area work_size**2, the encoder and scanner fully convolutional."""
    psnr_target: float | None = 42.0
    """Stamp strength in PSNR dB on the working copy (None: raw); see ``psnr_mode``."""
    psnr_mode: str = "exact"
    """'exact': each stamp rescaled to exactly ``psnr_target``; 'cap': only stamps stronger
    than ``psnr_target`` are scaled down (a perceptual mask then sets the strength, and a flat
    picture gets a weaker, invisible stamp)."""
    residual_activation: str = "none"
    """'tanh' bounds the encoder's output to [-1, 1] before the mask (with an absolute mask,
    the mask is then the largest change a pixel may get); 'unit_tanh' first scales each
    output to unit RMS, so the encoder chooses the pattern and the mask its strength (a
    near-zero output at initialisation still makes a full stamp); 'none' leaves it raw. Applied
    after ``residual_highpass``."""
    mask: str = "none"
    """Perceptual mask applied to the stamp: 'none' or 'texture'."""
    mask_power: float = 0.5
    mask_window: int = 7
    """Window (working-copy pixels) of the local luminance deviation behind the texture mask."""
    mask_floor: float = 0.02
    """Added to the local deviation before ``mask_power``: how much stamp a flat area keeps."""
    mask_ceiling: float | None = None
    """Cap on the local deviation behind the texture mask (None: no cap): a hard edge gets no
    more stamp than a textured area, so no blotch sits on it."""
    mask_gain: float | None = None
    """None: the mask is normalised to unit RMS per picture; a number makes it absolute (a
    just-noticeable-difference map): ``gain * (std + floor) ** power`` in [0,1] pixel units."""
    luma_only: bool = False
    """Stamp the luminance only (the same change on R, G and B): no colour casts, and the
    stamp survives grayscale conversion and hue/saturation changes unchanged."""
    crest_factor: float | None = None
    """Soft cap (tanh) on each pixel of the stamp at this multiple of the stamp's RMS, applied
    before the PSNR scaling: the encoder cannot concentrate the stamp's energy into a few
    visible blotches, and the PSNR still holds exactly."""
    residual_blur: float = 0.0
    """Std (working-copy pixels) of a Gaussian low-pass on the encoder's output: a stamp
    without near-Nyquist detail survives the resampling that any crop, resize or rotation
    does to the scanner's grid (0: off)."""
    residual_highpass: float = 0.0
    """Std (working-copy pixels) of a Gaussian whose blur is taken off the encoder's output: a
    stamp with no smooth field or local mean, made of fine detail only (0: off). Broad smooth
    fields are both the most visible part of a stamp and the hardest to find under content."""
    scan_transpose: bool = False
    """Score each working copy as the larger of the scanner's logits on it and on its transpose,
    in training and in use (twice the scanner's cost): quarter turns become mirrors."""
    smoothing_std: float = 0.0
    """Std of the Gaussian noise added to the scanner's input (randomized smoothing)."""
    scan_draws: int = 32
    """With smoothing_std > 0, the deployed score is the scanner's logit averaged over this many
    fixed noise draws (a deterministic smoothed scanner); 0 scans without noise."""
    scan_scales: tuple[float, ...] = (1.0,)
    """Scales of the working copy that the deployed score reads, keeping the largest score (1:
    the working copy itself). (1, 2) also reads a copy of twice the side, where a picture shrunk
    into a collage or inside a wide border shows its stamp near the scale it was made at. The
    scanner reads a copy at the largest scale and resizes it for the others; the cost grows with
    the sum of the squared scales. Not with smoothing (its noise lives in one working copy)."""
    message_bits: int = 0
    """0: a zero-bit stamp (the scanner says "stamped" or not). k > 0: a *keyed* stamp (candidate C
    of the stamp v3 study): the encoder writes k bits into the stamp, random ones in training, and
    the scanner reads k bit logits; a picture is stamped when they match the platform's key
    (:func:`deepraft.models.functional.keyed_score`), so a picture that merely looks like a stamp
    to the scanner decodes to bits unrelated to the key. Study models only: the runtime (stamper,
    cards, service) reads zero-bit models."""


@dataclass
class AugmentConfig:
    """The augmentation layer: which augmentations, how strong, and when they ramp in."""

    enabled: bool = False
    names: list[str] = field(
        default_factory=lambda: [
            "rotate",
            "crop",
            "resize",
            "color",
            "defocus",
            "blur",
            "perspective",
            "noise",
            "jpeg",
        ]
    )
    max_ops: int = 3
    """Stochastic concatenation: each step applies a random subset of 0..max_ops augmentations."""
    weights: dict[str, float] = field(default_factory=dict)
    """Relative chance of an augmentation of ``names`` to be in a step's subset (1 for those not
    given): ``{collage: 2}`` draws the collage about twice as often as any other augmentation. The
    subset is drawn without replacement (an augmentation is in a chain at most once) and its order
    stays uniformly random. Empty: every subset is equally likely."""
    always: list[str] = field(default_factory=list)
    """Augmentations applied to every augmented sample, before the random subset (e.g. ``crop``: no
    sample is seen on the exact grid it was stamped on, except the ``p_clean`` ones)."""
    aug_start: int = 0
    aug_end: int = 1
    """Curriculum: augmentation strength ramps linearly from 0 at aug_start to 1 at aug_end."""
    p_clean: float = 0.2
    """Fraction of samples in a batch left unaugmented (so plain detection stays exact)."""
    jpeg_mode: str = "real_ste"
    """'real_ste' (libjpeg through Pillow, straight-through gradient) or 'differentiable' (kornia)."""
    max_strength: dict[str, float] = field(default_factory=dict)
    """Optional per-augmentation override of the full-strength range (see augment.AUGMENTATIONS)."""
    p_swap: float = 0.0
    """Fraction of the clean samples that get another picture's stamp added before the augmentations,
    labelled 'not stamped': the scanner must check that the stamp fits the picture (its
    texture), so a stamp lifted from one picture, or averaged over many, does not flag another."""
    p_pattern: float = 0.0
    """Fraction of the clean samples that get a random grating or band-limited noise at the
    stamp's strength, labelled 'not stamped': no fixed pattern passes for the stamp."""
    pattern_db: float = 0.0
    """Those patterns are stronger than the stamp by a random 0..pattern_db dB (uniform in dB):
    a forger adds a grating at 40 dB, about 13 dB over a 53 dB stamp. 0: at the stamp's RMS."""


@dataclass
class DataConfig:
    image_size: int = 256
    """Side of the square training crops."""
    min_crop_area: float = 0.25
    num_workers: int = 0
    max_side: int = 512
    """Photos are downscaled to this longer side when first read (and cached in memory)."""
    at_work_scale: bool = False
    """The crops are windows of a working copy (``max_side`` near the working copy's side):
    the encoder and the scanner take them as they are, at the scale they deploy at. False:
    each crop is resized to a working copy of its own, as a whole picture is."""
    layout: str = "auto"
    """'auto', 'folder', 'mirflickr' or 'metfaces'."""
    nonphoto_fraction: float = 0.0
    """Fraction of the crops taken from pictures that are not photos: the training split of the
    folder ``deepraft train --nonphoto`` names (screenshots, documents, diagrams, drawings; split
    by package, :func:`deepraft.core.data.split_files`). Stamped and clean copies are made of
    them as of photos: the scanner learns to find the stamp on them and not to see one in them."""
    synthetic_fraction: float = 0.0
    """Fraction of the crops taken from generated non-photos (:mod:`deepraft.training.nonphoto`:
    text pages, app and chat mock-ups, charts, schematics, drawings, tilings, fractals)."""


@dataclass
class LossConfig:
    detection_weight: float = 1.0
    yuv_mse_weight: float = 1.0
    yuv_weights: tuple[float, float, float] = (1.0, 100.0, 100.0)
    """Per-channel weights of the YUV MSE (the paper penalises chroma more than luma)."""
    ssim_weight: float = 0.5
    image_weight: float = 1.0
    image_weight_ramp: int = 0
    """Image loss weight ramps linearly from 0 to image_weight over these many steps."""
    distill_weight: float = 1.0
    """Weight of the distillation hinge (with ``distill_from``): how far, in logits, a stamped
    copy's logit falls below the teacher's on the same copy, averaged over the stamped copies."""


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    batch_size: int = 16
    grad_accum: int = 1
    """Micro-batches per step: each step averages the gradients of ``grad_accum`` batches of
    ``batch_size`` crops (their own augmentations each), so a CPU trains at a GPU's batch (64 = 16 x
    4) in a quarter of the memory, on the same crops. BatchNorm still sees one micro-batch."""
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_steps: int = 10000
    warmup_steps: int = 200
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    device: str = "auto"
    autocast: str = "cuda"
    """Where the networks run under bf16 autocast: ``cuda`` (on a GPU only), ``always`` (a CPU
    too: worth it only on one with bf16 units; ``benchmarks/train_step_cost.py`` measures it),
    ``never``."""
    channels_last: bool = False
    """Train with the model's weights and each batch in channels-last memory order (on this
    machine's CPU a step of ``default_wide`` took 13.6 s instead of 18.4 s)."""
    grad_clip: float = 1.0
    strength_warmup_db: float = 0.0
    """Training warm-up: the stamp starts this many dB stronger than the model's setting and
    comes down linearly to it over ``strength_warmup_steps``: a strong stamp is found quickly,
    and the scanner then follows it as it fades (0: off)."""
    strength_warmup_steps: int = 0
    strength_schedule: list[tuple[float, ...]] | None = None
    """Instead of the linear warm-up: (step, dB) points, the stamp that many dB stronger than the
    model's setting at that step, linear between points, the first point's value before them and
    the last one's after (e.g. [[0, 10.5], [1000, 2.5], [1750, 0]])."""
    train_scan_scales: tuple[float, ...] = (1.0,)
    """Scales at which training reads each augmented copy, its logit the largest of the reads
    (the deployed score's max over ``model.scan_scales``, in the loss): (0.5, 1) puts the
    half-scale read of every clean and forged picture in the loss, so a half-scale read that
    takes clean texture for a stamp is trained out."""
    freeze: list[str] = field(default_factory=list)
    """Parts of the model kept as they are ('encoder' or 'scanner'): not optimised, batch norm
    statistics fixed. A scanner-only fine-tune (``freeze: [encoder]``) leaves the stamp, and so
    every quality measure, exactly as the model it starts from (``init_from``)."""
    init_from: str | None = None
    """Start a new run from the weights of a model (bundled name, model card, run folder or
    ``.safetensors`` file) instead of random ones: fine-tuning. Ignored when resuming."""
    init_parts: list[str] = field(default_factory=list)
    """The parts of the model (``encoder``, ``scanner``) that ``init_from`` sets; empty: all. With
    ``[encoder]`` a new scanner of another shape (e.g. wider) starts from random weights behind
    the starting model's stamp."""
    init_widen: bool = False
    """Let ``init_from``'s weights fill a model with more channels per layer (e.g. a wider
    scanner): each layer's weights go into its leading channels, the new channels start unused
    (weights reading them are zero), so the run starts from exactly what ``init_from`` computes
    and the new capacity is learned on top (:func:`deepraft.core.weights_io.widen_state`)."""
    distill_from: str | None = None
    """A teacher (same sources as ``init_from``) that reads every augmented copy beside the model
    being trained; the loss adds ``loss.distill_weight`` times how far each stamped copy's logit
    falls below the teacher's. A scanner-only fine-tune then learns new negatives without losing
    what the teacher finds. Needs ``freeze: [encoder]`` and the teacher's encoder."""


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert a plain YAML value to the annotated type ``tp`` (dataclasses recursively)."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if origin is tuple:
        return tuple(_convert(args[0], v, where) for v in value)
    if origin is list:
        return [_convert(args[0], v, where) for v in value]
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp in (int, str, bool, float) and not isinstance(value, tp):
        raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any] | None, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) suitable for YAML/JSON."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


def deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively with ``overrides`` (neither is modified)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def read_config_file(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML config, with its ``base:`` resolved: ``base: other.yaml`` (relative
    to this file's folder) is read first and this file's keys go over it, mappings merged key by
    key, lists and values replaced (so a stage names only what it changes). A base may have a
    base of its own; a loop is an error."""
    path = Path(path)
    if path.resolve() in _chain:
        loop = " -> ".join(str(p) for p in (*_chain, path.resolve()))
        raise ValueError(f"{path}: config bases form a loop: {loop}")
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read config: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config must be a mapping")
    data = dict(loaded or {})
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ValueError(f"{path}: base must be the file name of another config, got {base!r}")
    return deep_update(read_config_file(path.parent / base, (*_chain, path.resolve())), data)


def load_train_config(path: Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Resolve a training config: defaults < YAML file (over its ``base:``, see
    :func:`read_config_file`) < overrides (nested dict)."""
    data: dict[str, Any] = read_config_file(Path(path)) if path is not None else {}
    data = deep_update(data, overrides or {})
    return from_dict(TrainConfig, data, where=str(path) if path else "config")
