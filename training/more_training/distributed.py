"""torchrun plumbing: one code path for 1 CPU process, N GPUs on one node and several nodes.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK (and MASTER_ADDR/PORT); without them the run is a single
process and no process group is created. Backend "auto" is nccl on CUDA and gloo on CPU. `wrap` puts the
model under DDP (find_unused_parameters when MoE routing can leave experts without tokens) or FSDP.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .config import DistConfig


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None  # None: single process, no process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def resolve_device(pref: str, local_rank: int) -> torch.device:
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("run.device=cuda but CUDA is not available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init(cfg: DistConfig, device_pref: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (if any) and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_pref, local_rank)
    backend = None
    if world > 1:
        backend = cfg.backend if cfg.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
        if not dist.is_initialized():
            dist.init_process_group(
                backend=backend,
                timeout=datetime.timedelta(seconds=cfg.timeout_s),
                device_id=device if device.type == "cuda" else None,
            )
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=device, backend=backend)


def wrap(model: nn.Module, info: DistInfo, cfg: DistConfig, find_unused: bool) -> nn.Module:
    """The module to call for the training forward (the unwrapped model when single-process)."""
    if not info.distributed:
        return model
    if cfg.strategy == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel

        # use_orig_params keeps the frozen backbone and the trainable adapters in one flat parameter
        return FullyShardedDataParallel(
            model, use_orig_params=True, device_id=info.device if info.device.type == "cuda" else None
        )
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.local_rank] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def mean_over_ranks(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics over ranks (for logging only)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if info.backend == "nccl":
        t = t.to(info.device)
    dist.all_reduce(t)
    t = (t / info.world_size).cpu()
    return {k: float(v) for k, v in zip(keys, t.tolist(), strict=True)}


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
