"""Data-parallel training across processes started by ``torchrun`` (DistributedDataParallel).

Every rank draws the same global batch order from the same seeded generator and takes its contiguous
share of each global batch, so a run on W processes with per-rank batch B/W computes the same averaged
gradient as one process with batch B. The backend is NCCL on CUDA and gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's contiguous share of a global batch."""
        if not self.enabled:
            return x, y
        bounds = [len(x) * r // self.world_size for r in range(self.world_size + 1)]
        part = slice(bounds[self.rank], bounds[self.rank + 1])
        return x[part], y[part]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group described by torchrun's environment (or run alone if there is none)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: float, ctx: DistContext, device: torch.device) -> float:
    """Mean of a scalar over ranks (for logged statistics)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / ctx.world_size
