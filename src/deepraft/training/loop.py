"""The one training loop. Plain, smoothing and smoothing+augmentation runs (the paper's three
scripts) differ only by configuration (``configs/*.yaml``)."""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rich.progress
import torch
import yaml
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from deepraft.core.card import resolve_card
from deepraft.core.config import TrainConfig, to_dict
from deepraft.core.data import find_images, sample_seed, split_files
from deepraft.core.fileio import atomic_write_text
from deepraft.core.weights_io import latest_checkpoint, load_weights, widen_state
from deepraft.models import StampModel, build_model
from deepraft.models.functional import keyed_score, keyed_threshold, psnr
from deepraft.models.stamp import TrainingPass
from deepraft.training.augment import AugmentLayer, sample_negatives
from deepraft.training.checkpoint import load_checkpoint, save_checkpoint
from deepraft.training.datasets import PhotoCrops, StepBatches
from deepraft.training.distributed import DistInfo, all_reduce_mean, any_rank, init_distributed, shutdown_distributed
from deepraft.training.losses import detection_loss, distill_loss, image_loss, image_weight, message_loss

LOG_FIELDS = [
    "step",
    "loss",
    "det_loss",
    "img_loss",
    "psnr",
    "acc",
    "tpr",
    "tnr",
    "strength",
    "lr",
    "steps_per_s",
    "wall_time_s",
]


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    wall_time_s: float
    last: dict[str, float]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_description(device: torch.device, world_size: int = 1) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{_cpu_name()} ({torch.get_num_threads()} threads)"
    return f"{world_size} x {name}" if world_size > 1 else name


def init_weights(model: StampModel, source: str, parts: Sequence[str] = (), widen: bool = False) -> None:
    """Load the weights of ``source`` (anything :func:`deepraft.core.card.resolve_card` accepts)
    into ``model``, or into its ``parts`` alone (``encoder``, ``scanner``). What is loaded must
    match in shape (the stamp's post-processing may differ), or with ``widen`` fit into wider
    layers (:func:`deepraft.core.weights_io.widen_state`: the model starts computing what the
    source does)."""
    unknown = sorted(set(parts) - set(FREEZABLE))
    if unknown:
        raise ValueError(f"init_parts: unknown part(s) {', '.join(unknown)}; known: {', '.join(FREEZABLE)}")
    card = resolve_card(source)
    state = load_file(str(card.weights_path))
    try:
        for part in parts or FREEZABLE:
            module = getattr(model, part)
            sub = {k[len(part) + 1 :]: v for k, v in state.items() if k.startswith(part + ".")}
            module.load_state_dict(widen_state(sub, module.state_dict()) if widen else sub)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"init_from {source}: weights do not fit this model ({exc})") from exc


def build_teacher(cfg: TrainConfig, model: StampModel, device: torch.device) -> StampModel | None:
    """The frozen teacher of ``cfg.distill_from`` (None without one), in eval mode; ValueError
    unless the encoder is frozen and the teacher's is the same (it must read the same stamp)."""
    if not cfg.distill_from:
        return None
    if cfg.model.message_bits:
        raise ValueError("distill_from: a keyed model (message_bits) reads bits, not a teacher's logit")
    if "encoder" not in cfg.freeze:
        raise ValueError("distill_from needs freeze: [encoder] (the teacher reads the stamp it was trained on)")
    card = resolve_card(cfg.distill_from)
    teacher = build_model(card.model).to(device)  # its own scanner: it may be narrower than the student's
    load_weights(teacher, card.weights_path)
    mine, theirs = model.encoder.state_dict(), teacher.encoder.state_dict()
    if mine.keys() != theirs.keys() or any(not torch.equal(mine[k], theirs[k].to(mine[k].device)) for k in mine):
        raise ValueError(f"distill_from {cfg.distill_from}: its encoder differs from the one being trained")
    teacher.eval().requires_grad_(False)
    return teacher


FREEZABLE = ("encoder", "scanner")


def trainable_parameters(model: StampModel, freeze: Sequence[str]) -> list[torch.nn.Parameter]:
    """Mark the parts of ``model`` named in ``freeze`` as fixed (no gradients) and return the
    parameters left to optimise; ValueError for an unknown part or nothing left to train."""
    unknown = sorted(set(freeze) - set(FREEZABLE))
    if unknown:
        raise ValueError(f"freeze: unknown part(s) {', '.join(unknown)}; known: {', '.join(FREEZABLE)}")
    if set(FREEZABLE) <= set(freeze):
        raise ValueError("freeze: nothing left to train")
    for name in freeze:
        getattr(model, name).requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def set_training_mode(model: StampModel, freeze: Sequence[str]) -> None:
    """Training mode, but the frozen parts in eval mode (their batch norm statistics fixed)."""
    model.train()
    for name in freeze:
        getattr(model, name).eval()


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def stamp_boost(step: int, cfg: TrainConfig) -> float:
    """Amplitude factor of the stamp at ``step`` during the strength warm-up (1 after it), from
    ``strength_schedule`` when set, else from ``strength_warmup_db`` and ``strength_warmup_steps``."""
    if cfg.strength_schedule is not None:
        return 10.0 ** (schedule_db(step, cfg.strength_schedule) / 20.0)
    if cfg.strength_warmup_db <= 0 or step >= cfg.strength_warmup_steps:
        return 1.0
    db = cfg.strength_warmup_db * (1.0 - step / max(1, cfg.strength_warmup_steps))
    return 10.0 ** (db / 20.0)


def schedule_db(step: float, points: Sequence[Sequence[float]]) -> float:
    """Piecewise-linear value at ``step`` of (step, value) ``points`` (steps increasing), held
    constant before the first point and after the last."""
    if not points or any(len(p) != 2 for p in points):
        raise ValueError(f"strength_schedule: expected (step, dB) pairs, got {points!r}")
    steps = [float(p[0]) for p in points]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"strength_schedule: steps must increase, got {steps}")
    values = [float(p[1]) for p in points]
    if step <= steps[0]:
        return values[0]
    for (s0, v0), (s1, v1) in zip(zip(steps, values), zip(steps[1:], values[1:])):
        if step <= s1:
            return v0 + (v1 - v0) * (step - s0) / (s1 - s0)
    return values[-1]


AUTOCAST = ("cuda", "always", "never")


def autocast(where: str, device: torch.device) -> AbstractContextManager:
    """bf16 autocast on ``device`` as ``TrainConfig.autocast`` says (see there)."""
    if where not in AUTOCAST:
        raise ValueError(f"autocast must be one of {', '.join(AUTOCAST)}, got {where!r}")
    if where == "always" or (where == "cuda" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def _micro_step(
    model: torch.nn.Module,
    x: torch.Tensor,
    step: int,
    micro: int,
    cfg: TrainConfig,
    augment: AugmentLayer,
    device: torch.device,
    info: DistInfo,
    teacher: StampModel | None = None,
) -> tuple[torch.Tensor, float]:
    """Forward and backward of one micro-batch of clean crops ``x`` (in [0, 1]), its loss
    scaled by ``1 / grad_accum``; returns its metrics (loss, det, img, psnr, acc, tpr, tnr) and
    the augmentation strength. Micro-batch 0 draws from the streams a step without accumulation uses.
    A ``teacher`` scans the same copies with the same smoothing noise (see ``distill_from``)."""
    n = x.shape[0]
    extra = (micro,) if micro else ()
    g = torch.Generator().manual_seed(sample_seed(cfg.seed, step, info.rank, 1, *extra))
    noise_seed = sample_seed(cfg.seed, step, info.rank, 2, *extra)
    record = augment.sample(2 * n, (x.shape[-2], x.shape[-1]), step, g)
    negatives = (
        sample_negatives(n, (x.shape[-2], x.shape[-1]), cfg.augment, g, record.strength)
        if record.strength > 0
        else None
    )
    views: dict[str, Any] = {
        "augment": lambda b: augment.apply(b, record),
        "negatives": negatives,
        "boost": stamp_boost(step, cfg),
        "as_work": cfg.data.at_work_scale,
        "scales": cfg.train_scan_scales,
    }
    taught = None
    with autocast(cfg.autocast, device):
        out = model(x, generator=torch.Generator(device=device).manual_seed(noise_seed), **views)
        if teacher is not None:  # the same copies, with the same smoothing noise
            with torch.no_grad():
                g = torch.Generator(device=device).manual_seed(noise_seed)
                taught = teacher.scan(
                    out.copies.detach(), noise=True, generator=g, as_work=views["as_work"], scales=views["scales"]
                )
    loss, stats = _loss(out, x, step, cfg, taught)
    (loss / cfg.grad_accum).backward()
    return stats, record.strength


KEYED_LOG_THRESHOLD = keyed_threshold(1e-3)
"""The keyed score a training log counts as "found": FPR <= 1e-3 for any key (3.72)."""


def _loss(
    out: TrainingPass, x: torch.Tensor, step: int, cfg: TrainConfig, taught: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of a training pass over clean crops ``x`` and its metrics (loss, det, img, psnr,
    acc, tpr, tnr): a keyed model's acc is its stamped copies' bit accuracy, and its tpr/tnr count
    keyed scores over :data:`KEYED_LOG_THRESHOLD` with each picture's own message as the key."""
    n, logits, dev = x.shape[0], out.logits, x.device
    labels = torch.cat([torch.ones(n, device=dev), torch.zeros(n, device=dev)])
    if out.messages is None:
        det = detection_loss(logits, labels)
    else:
        det = message_loss(logits, out.messages)
    img = image_loss(out.stamped.float(), x, cfg.loss)
    loss = cfg.loss.detection_weight * det + image_weight(step, cfg.loss) * img
    if taught is not None:
        loss = loss + cfg.loss.distill_weight * distill_loss(logits, taught, labels)
    with torch.no_grad():
        if out.messages is None:
            pred = logits.float() > 0
            acc = (pred == labels.bool()).float().mean()
        else:
            pred = keyed_score(logits, out.messages.repeat(2, 1)) > KEYED_LOG_THRESHOLD
            acc = ((logits[:n].float() > 0) == out.messages.bool()).float().mean()
        stats = [loss, det, img, psnr(out.stamped.float(), x).mean(), acc]
        stats += [pred[:n].float().mean(), (~pred[n:]).float().mean()]
        return loss, torch.stack([v.detach() for v in stats])


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    step: int,
    cfg: TrainConfig,
    augment: AugmentLayer,
    device: torch.device,
    info: DistInfo,
    teacher: StampModel | None = None,
) -> dict[str, float]:
    """One optimisation step on a uint8 batch of clean crops (``grad_accum`` micro-batches of
    ``batch_size``, gradients averaged; DistributedDataParallel syncs on the last); returns its
    metrics, averaged over the micro-batches."""
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if x.shape[0] != cfg.batch_size * cfg.grad_accum:
        raise ValueError(
            f"grad_accum {cfg.grad_accum}: a step needs batch_size x grad_accum = "
            f"{cfg.batch_size * cfg.grad_accum} crops, got {x.shape[0]}"
        )
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, cfg)
    optimizer.zero_grad(set_to_none=True)
    total, strength = torch.zeros(7, device=device), 0.0
    for micro, chunk in enumerate(x.split(cfg.batch_size)):
        last = micro == cfg.grad_accum - 1
        sync = nullcontext() if last or not isinstance(model, DistributedDataParallel) else model.no_sync()
        with sync:
            stats, strength = _micro_step(model, chunk, step, micro, cfg, augment, device, info, teacher)
        total += stats / cfg.grad_accum
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    values: list[float] = all_reduce_mean(total, info).tolist()
    keys = ["loss", "det_loss", "img_loss", "psnr", "acc", "tpr", "tnr"]
    return {**dict(zip(keys, values)), "strength": strength, "lr": optimizer.param_groups[0]["lr"]}


class _CsvLog:
    """Append-only CSV log; on resume, rows past the resumed step are dropped first (the
    shortened log replaces the old one atomically: a crash leaves one or the other)."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        rows: list[dict[str, str]] = []
        if path.exists():
            with path.open(newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(path, buf.getvalue())

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, LOG_FIELDS, extrasaction="ignore").writerow(row)


def _progress(enabled: bool) -> rich.progress.Progress:
    rp = rich.progress
    return rp.Progress(
        rp.TextColumn("[bold]train"),
        rp.BarColumn(),
        rp.MofNCompleteColumn(),
        rp.TimeRemainingColumn(),
        rp.TextColumn("{task.fields[stats]}"),
        disable=not enabled,
        transient=False,
    )


def _start(
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool,
    model: StampModel,
    optimizer: torch.optim.Optimizer,
    info: DistInfo,
    device: torch.device,
) -> tuple[int, float]:
    """(first step, wall time so far): from the latest checkpoint, else a new run (from
    ``init_from``'s weights when set). The refusal to overwrite a run is decided on every rank
    before any other collective: raised on rank 0 alone, it left the other ranks waiting in
    DistributedDataParallel's first broadcast for ever."""
    ckpt = latest_checkpoint(run_dir) if resume else None
    exists = not resume and (run_dir / "checkpoints").exists()
    if any_rank(exists, info, device):
        raise FileExistsError(f"{run_dir}: run exists; resume it or pick another run name")
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer)
        return int(state["step"]), float(state["wall_time_s"])
    if cfg.init_from:
        init_weights(model, cfg.init_from, cfg.init_parts, cfg.init_widen)
    return 0, 0.0


def write_run_files(
    run_dir: Path,
    cfg: TrainConfig,
    data_dir: Path,
    device: torch.device,
    world_size: int,
    nonphoto_dir: Path | None = None,
) -> None:
    """``config.yaml`` (the resolved config) and ``run.json`` (data, hardware, versions), each
    written atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    atomic_write_text(
        run_dir / "run.json",
        json.dumps(
            {
                "data": str(Path(data_dir).resolve()),
                **({"nonphoto": str(Path(nonphoto_dir).resolve())} if nonphoto_dir is not None else {}),
                "hardware": hardware_description(device, world_size),
                "torch": torch.__version__,
                "world_size": world_size,
            },
            indent=2,
        ),
    )


def _loader(
    cfg: TrainConfig,
    data_dir: Path,
    start: int,
    stop: int,
    info: DistInfo,
    device: torch.device,
    nonphoto_dir: Path | None = None,
) -> DataLoader:
    files = find_images(Path(data_dir), cfg.data.layout)
    d = cfg.data
    others = [p for p, _ in split_files(Path(nonphoto_dir), "train")] if nonphoto_dir is not None else None
    dataset = PhotoCrops(
        files,
        d.image_size,
        d.min_crop_area,
        d.max_side,
        cfg.seed,
        others=others,
        other_fraction=d.nonphoto_fraction,
        synthetic_fraction=d.synthetic_fraction,
    )
    return DataLoader(
        dataset,
        batch_sampler=StepBatches(start, stop, cfg.batch_size * cfg.grad_accum, info.rank),
        num_workers=cfg.data.num_workers,
        persistent_workers=cfg.data.num_workers > 0,
        pin_memory=device.type == "cuda",
    )


@dataclass
class _Slice:
    """What the steps of one slice share: the run, its model and optimizer, the clock."""

    cfg: TrainConfig
    run_dir: Path
    model: StampModel
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    info: DistInfo
    device: torch.device
    wall: float
    time_limit_s: float | None
    t_start: float
    teacher: StampModel | None = None

    def elapsed(self) -> float:
        return self.wall + time.perf_counter() - self.t_start

    def out_of_time(self) -> bool:
        late = self.time_limit_s is not None and time.perf_counter() - self.t_start > self.time_limit_s
        return any_rank(late, self.info, self.device)

    def checkpoint(self, done: int) -> None:
        if self.info.is_main:
            save_checkpoint(
                self.run_dir,
                done,
                self.model,
                self.cfg.model,
                self.optimizer,
                self.elapsed(),
                self.cfg.keep_checkpoints,
            )


def _run_steps(
    sl: _Slice, loader: DataLoader, start: int, stop: int, log: _CsvLog | None, show_progress: bool
) -> tuple[int, dict[str, float]]:
    """Train steps ``start..stop-1`` (or until out of time); returns (last step, its metrics).
    A log row holds the metrics averaged over the steps since the row before (one step's
    batch is too few samples to follow a run by), the learning rate of its last step."""
    cfg = sl.cfg
    augment = AugmentLayer(cfg.augment)
    step, last = start, {}
    sums: dict[str, float] = {}
    t_log, steps_since = time.perf_counter(), 0
    with _progress(show_progress and sl.info.is_main) as bar:
        task = bar.add_task("train", total=cfg.max_steps, completed=start, stats="")
        for step, batch in zip(range(start, stop), loader):
            last = train_step(sl.net, sl.optimizer, batch, step, cfg, augment, sl.device, sl.info, sl.teacher)
            sums = {k: sums.get(k, 0.0) + v for k, v in last.items()}
            steps_since += 1
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.max_steps:
                now = time.perf_counter()
                row = {**{k: v / steps_since for k, v in sums.items()}, "lr": last["lr"]}
                row["steps_per_s"] = steps_since / max(1e-9, now - t_log)
                t_log, steps_since, sums = now, 0, {}
                row["wall_time_s"] = sl.elapsed()
                bar.update(
                    task,
                    completed=done,
                    stats=(
                        f"loss {row['loss']:.3f} psnr {row['psnr']:.1f} acc {row['acc']:.3f} str {row['strength']:.2f}"
                    ),
                )
                if log:
                    log.write({"step": done, **{k: f"{v:.6g}" for k, v in row.items()}})
            else:
                bar.update(task, completed=done)
            out_of_time = sl.out_of_time()
            if done % cfg.checkpoint_every == 0 or done == stop or out_of_time:
                sl.checkpoint(done)
            if out_of_time:
                break
    return step, last


def train(
    cfg: TrainConfig,
    data_dir: Path,
    run_dir: Path,
    resume: bool = True,
    show_progress: bool = True,
    until_step: int | None = None,
    time_limit_s: float | None = None,
    nonphoto_dir: Path | None = None,
) -> TrainResult:
    """Train (or resume) the run in ``run_dir`` on the photos of ``data_dir`` (and, with
    ``data.nonphoto_fraction``, the training split of the non-photos in ``nonphoto_dir``).

    Resuming is exact: weights, optimizer, step and RNG come from the latest checkpoint and
    the batches and augmentations of step ``s`` depend only on ``(seed, s, rank)``. A slice of a run
    ends at ``until_step`` or after ``time_limit_s`` seconds (with a checkpoint), so a run can
    be trained in pieces (e.g. 15-minute GPU budgets) and continued later.
    """
    if cfg.grad_accum < 1:
        raise ValueError(f"grad_accum must be at least 1, got {cfg.grad_accum}")
    if not cfg.train_scan_scales or min(cfg.train_scan_scales) <= 0:
        raise ValueError(f"train_scan_scales must be positive and not empty, got {cfg.train_scan_scales}")
    info, device = init_distributed(cfg.device)
    run_dir = Path(run_dir).resolve()
    try:
        torch.manual_seed(cfg.seed)
        model: StampModel = build_model(cfg.model).to(device)
        params = trainable_parameters(model, cfg.freeze)
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        start, wall = _start(cfg, run_dir, resume, model, optimizer, info, device)
        if info.is_main:
            write_run_files(run_dir, cfg, data_dir, device, info.world_size, nonphoto_dir)
        net = DistributedDataParallel(model) if info.enabled else model
        stop = min(cfg.max_steps, until_step) if until_step is not None else cfg.max_steps
        loader = _loader(cfg, data_dir, start, stop, info, device, nonphoto_dir)
        log = _CsvLog(run_dir / "log.csv", start) if info.is_main else None
        set_training_mode(model, cfg.freeze)
        teacher = build_teacher(cfg, model, device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
            if teacher is not None:
                teacher.to(memory_format=torch.channels_last)
        sl = _Slice(cfg, run_dir, model, net, optimizer, info, device, wall, time_limit_s, time.perf_counter(), teacher)
        step, last = _run_steps(sl, loader, start, stop, log, show_progress)
        return TrainResult(run_dir, max(step + 1, start) if last else start, sl.elapsed(), last)
    finally:
        shutdown_distributed(info)
