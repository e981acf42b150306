"""torchrun plumbing: one code path for 1 CPU process, N GPUs on one node and several nodes.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK (and MASTER_ADDR/PORT); without them the run is a single
process and no process group is created. Backend "auto" is nccl on CUDA and gloo on CPU. `wrap` puts the
model under DDP (find_unused_parameters when MoE routing can leave experts without tokens) or FSDP.

FSDP is PyTorch's per-parameter FSDP (`fully_shard`, "FSDP2"): every decoder layer is one unit, the rest of the
policy (embeddings, vision projection, head) the root unit; frozen backbone tensors and trainable adapters are
sharded alike along dim 0 as DTensors, so the frozen backbone's memory divides by the world size. Sharded
tensors are handled at three places, all here: the target network keeps its EMA copy sharded like the online
parameters (`shard_like`); checkpoints are written unsharded (`full_tensor` gathers the policy's, the target's
and the optimizer's tensors on every rank, rank 0 writes), so a checkpoint is the same whatever the strategy
and world size; a resume loads the full tensors and shards them again (`shard_like`, `shard_optimizer_state`).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .config import DistConfig

DECODER_LAYER_SUFFIX = "DecoderLayer"  # transformers' decoder-layer classes (PersimmonDecoderLayer for Fuyu)


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
    """The module to call for the training forward (the unwrapped model when single-process).

    DDP returns a wrapper; FSDP shards `model` in place (its parameters become DTensors) and returns it:
    build the optimizer after this call.
    """
    if not info.distributed:
        return model
    if cfg.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        layers = [m for m in model.modules() if type(m).__name__.endswith(DECODER_LAYER_SUFFIX)]
        if not layers:
            raise ValueError(f"dist.strategy=fsdp found no *{DECODER_LAYER_SUFFIX} modules to shard in the model")
        for layer in layers:
            fully_shard(layer)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.local_rank] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def is_sharded(t: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a DTensor shard (a collective: every rank must call it, in the same order)."""
    return t.full_tensor() if is_sharded(t) else t


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`full` split the way `like` (a DTensor parameter) is, without communication; `full` itself otherwise."""
    if not is_sharded(like):
        return full
    from torch.distributed.tensor import distribute_tensor

    assert tuple(full.shape) == tuple(like.shape), f"cannot shard {tuple(full.shape)} like {tuple(like.shape)}"
    full = full.to(device=like.to_local().device, dtype=like.dtype)
    return distribute_tensor(full, like.device_mesh, like.placements, src_data_rank=None)


def full_optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """optimizer.state_dict() with every sharded state tensor gathered (collective under FSDP)."""
    sd = optimizer.state_dict()
    state = {}
    for idx in sorted(sd["state"]):
        st = sd["state"][idx]
        state[idx] = {k: (full_tensor(v) if isinstance(v, torch.Tensor) else v) for k, v in sorted(st.items())}
    return {"state": state, "param_groups": sd["param_groups"]}


def shard_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """After loading a full optimizer state: split the per-parameter tensors like their (DTensor) parameters."""
    for p, st in optimizer.state.items():
        if not is_sharded(p):
            continue
        for k, v in st.items():
            if isinstance(v, torch.Tensor) and not is_sharded(v) and tuple(v.shape) == tuple(p.shape) and v.dim() > 0:
                st[k] = shard_like(v, p)


def fsdp_units(model: nn.Module) -> list[nn.Module]:
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


def gradient_sync(forward: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """Skip the gradient all-reduce of a micro-step that is not the last of its accumulation (DDP and FSDP)."""
    if sync:
        return contextlib.nullcontext()
    no_sync = getattr(forward, "no_sync", None)  # DDP
    if no_sync is not None:
        return no_sync()
    units = fsdp_units(forward)
    if units:
        return _fsdp_no_sync(units)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _fsdp_no_sync(units: list[nn.Module]) -> Iterator[None]:
    for unit in units:
        unit.set_requires_gradient_sync(False, recurse=False)
    try:
        yield
    finally:
        for unit in units:
            unit.set_requires_gradient_sync(True, recurse=False)


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
