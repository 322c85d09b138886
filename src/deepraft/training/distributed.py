"""Process-group set-up for ``torchrun`` (DistributedDataParallel); a no-op otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank)
    return device


def init_distributed(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment (gloo on CPU,
    NCCL on CUDA). Without ``WORLD_SIZE`` > 1 this does nothing."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        info = DistInfo()
        return info, resolve_device(device_name, info)
    info = DistInfo(rank=int(os.environ["RANK"]), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name, info)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def shutdown_distributed(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values)
        values /= info.world_size
    return values


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Is ``flag`` true on any rank? A collective: every rank must call it, in the same order,
    so that a decision to stop (or to refuse) is taken by all ranks together."""
    if not info.enabled:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
