"""What one training step costs on this machine, and what makes it cheaper (issue 27, point 3).

    python benchmarks/train_step_cost.py [--config configs/default_wide.yaml] [--data DIR]
                                         [--nonphoto DIR] [--steps 3] [--out FILE.json]

Times ``deepraft.training.loop.train_step`` (forward, backward and optimiser step of the config's
batch, teacher included) on real crops, after one warm-up step, for variants of the config:

* ``as configured``: float32 on the CPU;
* ``bf16 autocast``: the networks under bfloat16 autocast on the CPU (``autocast: always``);
* ``channels_last``: the model's weights and the batch in channels-last memory order;
* ``crops N px``: smaller training crops (``data.image_size``; the networks are convolutional);

and, on the configured step, the share of its parts: loading the batch (decoding, generating
non-photos, cropping), the augmentation layer (sampling and applying its edits to the 2B copies,
forward only), and the rest. Prints a table and writes the numbers as JSON (``--out``).
Run it on an otherwise idle machine: it measures wall time.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

from deepraft.core.config import TrainConfig, load_train_config
from deepraft.core.data import find_images, split_files
from deepraft.models.stamp import build_model
from deepraft.training.augment import AugmentLayer
from deepraft.training.datasets import PhotoCrops
from deepraft.training.distributed import DistInfo
from deepraft.training.loop import (
    build_teacher,
    hardware_description,
    init_weights,
    set_training_mode,
    train_step,
    trainable_parameters,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402


def crops(cfg: TrainConfig, data: Path, nonphoto: Path | None, step: int) -> PhotoCrops:
    others = [p for p, _ in split_files(nonphoto, "train")] if nonphoto is not None else None
    d = cfg.data
    return PhotoCrops(
        find_images(data, d.layout),
        d.image_size,
        d.min_crop_area,
        d.max_side,
        cfg.seed + step,
        others=others,
        other_fraction=d.nonphoto_fraction if others else 0.0,
        synthetic_fraction=d.synthetic_fraction,
    )


def load_batch(ds: PhotoCrops, step: int, n: int) -> torch.Tensor:
    return torch.stack([ds[step, i] for i in range(n)])


def time_steps(cfg: TrainConfig, ds: PhotoCrops, steps: int, channels_last: bool = False) -> float:
    """Mean seconds of ``train_step`` over ``steps`` steps after one warm-up (batches preloaded)."""
    device = torch.device("cpu")
    model = build_model(cfg.model)
    if cfg.init_from:
        init_weights(model, cfg.init_from, cfg.init_parts)
    teacher = build_teacher(cfg, model, device)
    if channels_last:  # as train() does with channels_last: true
        model.to(memory_format=torch.channels_last)
        if teacher is not None:
            teacher.to(memory_format=torch.channels_last)
        cfg = copy.deepcopy(cfg)
        cfg.channels_last = True
    optimizer = torch.optim.AdamW(trainable_parameters(model, cfg.freeze), lr=cfg.lr)
    set_training_mode(model, cfg.freeze)
    n = cfg.batch_size * cfg.grad_accum
    batches = [load_batch(ds, s, n) for s in range(steps + 1)]
    augment, info = AugmentLayer(cfg.augment), DistInfo()
    train_step(model, optimizer, batches[0], 10_000, cfg, augment, device, info, teacher)
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        train_step(model, optimizer, batches[s], 10_000 + s, cfg, augment, device, info, teacher)
    return (time.perf_counter() - t0) / steps


def parts(cfg: TrainConfig, ds: PhotoCrops, steps: int) -> dict[str, float]:
    """Mean seconds per step of loading the batch and of the augmentation layer alone."""
    n = cfg.batch_size * cfg.grad_accum
    t0 = time.perf_counter()
    batches = [load_batch(ds, 100 + s, n) for s in range(steps)]
    load = (time.perf_counter() - t0) / steps
    augment = AugmentLayer(cfg.augment)
    t0 = time.perf_counter()
    with torch.no_grad():
        for s, b in enumerate(batches):
            x = b.float().div(255.0)
            g = torch.Generator().manual_seed(s)
            record = augment.sample(2 * x.shape[0], (x.shape[-2], x.shape[-1]), 10_000 + s, g)
            augment.apply(torch.cat([x, x]), record)
    return {"load_s": load, "augment_s": (time.perf_counter() - t0) / steps}


def variants(cfg: TrainConfig) -> dict[str, tuple[TrainConfig, bool]]:
    out: dict[str, tuple[TrainConfig, bool]] = {"as configured": (cfg, False)}
    bf16 = copy.deepcopy(cfg)
    bf16.autocast = "always"
    out["bf16 autocast"] = (bf16, False)
    out["channels_last"] = (cfg, True)
    for size in (96, 64):
        if size < cfg.data.image_size:
            small = copy.deepcopy(cfg)
            small.data.image_size = size
            out[f"crops {size} px"] = (small, False)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "default_wide.yaml")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "photos-512" / "train")
    ap.add_argument("--nonphoto", type=Path, default=None, help="Non-photo folder (MANIFEST.tsv) the config mixes in.")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument(
        "--batch-size", type=int, default=None, help="Override the config's batch (e.g. for a quick check)."
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    cfg = load_train_config(args.config, {"batch_size": args.batch_size} if args.batch_size else None)
    result: dict = {
        "config": str(args.config),
        "hardware": hardware_description(torch.device("cpu")),
        "torch": torch.__version__,
        "batch": cfg.batch_size * cfg.grad_accum,
        "image_size": cfg.data.image_size,
        "steps": args.steps,
        "seconds_per_step": {},
    }
    for name, (vcfg, channels_last) in variants(cfg).items():
        ds = crops(vcfg, args.data, args.nonphoto, 0)
        try:
            result["seconds_per_step"][name] = round(time_steps(vcfg, ds, args.steps, channels_last), 3)
        except (RuntimeError, TypeError, ValueError) as exc:  # a variant this machine cannot run
            result["seconds_per_step"][name] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        print(f"{name:>16}: {result['seconds_per_step'][name]}", flush=True)
    share = parts(cfg, crops(cfg, args.data, args.nonphoto, 1), args.steps)
    result["parts_s"] = {k: float(f"{v:.4g}") for k, v in share.items()}
    print(f"per step: loading {share['load_s']:.3f} s, augmentation layer {share['augment_s']:.3f} s", flush=True)
    heldout.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
