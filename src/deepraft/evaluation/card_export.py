"""``deepraft export``: turn a training run into a calibrated model card."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
import yaml

from deepraft.core.card import WEIGHTS_FILE, ModelCard, sha256_file, write_card
from deepraft.core.data import find_images, split_files
from deepraft.core.imageio import picture_from_pil
from deepraft.core.weights_io import latest_checkpoint, load_weights, read_model_config, save_weights
from deepraft.evaluation.calibrate import DEFAULT_FPRS, Calibration, ScoreCache, calibrate
from deepraft.models import build_model, require_zero_bit
from deepraft.models.stamp import StampModel
from deepraft.runtime.engine import shipped_graph, write_scan_graph
from deepraft.runtime.stamper import Stamper
from deepraft.training.checkpoint import read_train_state


def _run_record(run_dir: Path, ckpt: Path) -> dict:
    """Steps, wall time and machine of a run, from its checkpoint ``ckpt`` and its run.json."""
    state = read_train_state(ckpt)
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    return {
        "run": run_dir.name,
        "steps": int(state["step"]),
        "wall_time_s": round(float(state["wall_time_s"]), 1),
        "hardware": info.get("hardware"),
        "torch": info.get("torch"),
        "data": info.get("data"),
    }


STAGE_KEYS = ("run", "steps", "wall_time_s", "hardware")


def base_runs(init_from: str | None) -> list[dict]:
    """The records of the runs a fine-tuned run descends from, oldest first: the run it started
    from, the one that run started from, and so on while each is a run folder with a checkpoint
    (a chain of stages, e.g. ``scripts/make_model.sh default``)."""
    chain: list[dict] = []
    seen: set[Path] = set()
    while init_from and Path(init_from).is_dir() and Path(init_from).resolve() not in seen:
        run = Path(init_from).resolve()
        seen.add(run)
        ckpt = latest_checkpoint(run)
        if ckpt is None:
            break
        chain.insert(0, _run_record(run, ckpt))
        cfg_file = run / "config.yaml"
        init_from = (yaml.safe_load(cfg_file.read_text()) or {}).get("init_from") if cfg_file.exists() else None
    return chain


def training_record(run_dir: Path, ckpt: Path, recipe: str | None) -> dict:
    """The card's ``training`` entry of a run: its own record, recipe and config; for a fine-tune,
    every stage before it (``stages``) and their steps and wall time added to its own."""
    train_cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").exists() else {}
    training = {**_run_record(run_dir, ckpt), "recipe": recipe, "config": train_cfg}
    bases = base_runs(train_cfg.get("init_from"))
    if bases:  # a fine-tuned run: the stages before it count too
        training["stages"] = [{k: r[k] for k in STAGE_KEYS} for r in (*bases, training)]
        training["wall_time_s"] = round(sum(r["wall_time_s"] for r in training["stages"]), 1)
        training["steps"] = int(sum(r["steps"] for r in training["stages"]))
    return training


def _checkpoint_model(ckpt: Path, scan_scales: Sequence[float] | None) -> tuple[StampModel, dict]:
    """The model of checkpoint ``ckpt``, reading at ``scan_scales`` when given, and the config
    fields that differ from the checkpoint's (``{}`` or ``{"scan_scales": [...]}``)."""
    cfg = read_model_config(ckpt / WEIGHTS_FILE)
    require_zero_bit(cfg, ckpt)
    overrides = {}
    if scan_scales is not None and tuple(scan_scales) != tuple(cfg.scan_scales):
        overrides["scan_scales"] = [float(s) for s in scan_scales]
        cfg = dataclasses.replace(cfg, scan_scales=tuple(overrides["scan_scales"]))
    model = build_model(cfg)
    load_weights(model, ckpt / WEIGHTS_FILE)
    return model, overrides


def export_run(
    run_dir: Path,
    name: str,
    out_dir: Path,
    calib_data: Path | None,
    fprs: Sequence[float] = DEFAULT_FPRS,
    default_fpr: float = 1e-3,
    variants_per_image: int = 50,
    test_data: Path | None = None,
    recipe: str | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
    scan_scales: Sequence[float] | None = None,
    calib_nonphoto: Path | None = None,
    calib_generated: int = 0,
    calib_cache: Path | None = None,
) -> ModelCard:
    """Write ``out_dir`` (card.json + model.safetensors) from the latest checkpoint of ``run_dir``,
    with thresholds calibrated on the clean photos of ``calib_data`` and, when ``test_data`` is
    given, the quick check's metrics on its photos. ``scan_scales`` replaces the run's (the scales
    the deployed scanner reads at; training never reads them, so the same weights serve): the
    card's model config carries the new ones and its ``training.export_overrides`` says so.
    ``calib_nonphoto`` (a folder with a manifest: its ``val`` packages) and ``calib_generated``
    generated non-photos join the clean photos of the calibration; the card then states the
    rate above each threshold per kind of picture, with its upper bound. ``calib_cache``: see
    :class:`ScoreCache` (a stopped export resumes)."""
    from deepraft.evaluation.headline import headline_check

    run_dir = Path(run_dir).resolve()
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint to export")
    if default_fpr not in fprs:
        fprs = tuple(sorted(set(fprs) | {default_fpr}, reverse=True))
    out_dir = Path(out_dir).resolve()
    if out_dir == run_dir:
        raise ValueError(f"{out_dir}: refusing to export over the run folder")
    model, overrides = _checkpoint_model(ckpt, scan_scales)  # checks them before anything is written
    cfg = model.cfg
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, out_dir / WEIGHTS_FILE, cfg)
    training = training_record(run_dir, ckpt, recipe)
    if overrides:
        training["export_overrides"] = overrides
    card = ModelCard(name=name, model=cfg, default_fpr=default_fpr, path=out_dir, training=training)
    stamper = _card_stamper(card, model)
    if calib_data is not None:
        cache = ScoreCache(calib_cache, sha256_file(card.weights_path)) if calib_cache else None
        cal = _calibrate(
            stamper, Path(calib_data), calib_nonphoto, calib_generated, fprs, variants_per_image, progress, cache
        )
        card.thresholds = cal.thresholds
        card.calibration = cal.as_dict()
    if test_data is not None:
        if not card.thresholds:
            raise ValueError("metrics need calibrated thresholds: pass calibration data too")
        report = headline_check(stamper, find_images(Path(test_data)), progress=progress)
        card.metrics = {"test_data": str(Path(test_data).resolve()), **report.as_dict()}
    card.weights_sha256 = sha256_file(out_dir / WEIGHTS_FILE)
    write_card(card, out_dir)
    return card


def _card_stamper(card: ModelCard, model: StampModel) -> Stamper:
    """The stamper of a card being written, on the CPU: its ``scanner.onnx`` written first and run
    by ONNX Runtime, what deployment scans with (2-3x PyTorch's throughput on a CPU); PyTorch
    where the graph or the runtime is missing."""
    _write_scan_graph(model, card.weights_path)
    model.scanner.to(memory_format=torch.channels_last)
    graph = shipped_graph(card.weights_path)
    return Stamper(card, model, torch.device("cpu"), engine="auto" if graph is not None else "torch", graph=graph)


def _calibrate(
    stamper: Stamper,
    photos: Path,
    nonphoto: Path | None,
    generated: int,
    fprs: Sequence[float],
    variants: int,
    progress: Callable[[Iterable], Iterable] | None,
    cache: ScoreCache | None = None,
) -> Calibration:
    """The card's calibration: the clean photos of ``photos``, the val packages of ``nonphoto``
    and ``generated`` generated non-photos, scored by ``stamper``."""
    files = find_images(photos)
    kinds = ["photo"] * len(files)
    names = [str(photos.resolve())]
    if nonphoto is not None:
        extra = split_files(Path(nonphoto), "val")
        files += [p for p, _ in extra]
        kinds += [k for _, k in extra]
        names.append(f"{Path(nonphoto).resolve()} (val packages)")
    if generated:
        names.append(f"{generated} generated non-photos")
    return calibrate(
        lambda imgs: stamper.copies.score_pictures([picture_from_pil(i) for i in imgs]),
        files,
        fprs,
        variants,
        data_name="; ".join(names),
        progress=progress,
        kinds=kinds,
        generated=generated,
        cache=cache,
    )


def _write_scan_graph(model: StampModel, weights: Path) -> None:
    """The card's ``scanner.onnx`` (what a plain install scans with), where the ``onnx`` package
    is there to export it; without it the card still loads and scans with PyTorch."""
    if importlib.util.find_spec("onnx") is None:
        warnings.warn(f"{weights.parent}: scanner.onnx not written (needs the 'onnx' extra)", stacklevel=3)
        return
    write_scan_graph(model, weights)
