"""Processes started by ``torchrun``: data-parallel training and verification split by batch.

Training (DistributedDataParallel): every rank draws the same global batch order from the same seeded generator
and takes its contiguous share of each global batch, so a run on W processes with per-rank batch B/W computes the
same averaged gradient as one process with batch B. Verification: rank r takes the batches r, r + W, ... whole
(the same batches as one process, so the same numbers) and :func:`gather_batches` puts them back in order. The
backend is NCCL on CUDA and gloo on the CPU; results travel as tensors, never pickled.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ddzoo.errors import InvalidArgumentError

_TORCHRUN_ENV = ("RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets beside WORLD_SIZE


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
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise InvalidArgumentError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number: unset it, or start "
                                   "the command with torchrun") from None
    if world_size <= 1:
        return DistContext()
    missing = [name for name in _TORCHRUN_ENV if name not in os.environ]
    if missing and not dist.is_initialized():  # a stray WORLD_SIZE, not torchrun's: joining would hang or crash
        raise InvalidArgumentError(f"WORLD_SIZE={world_size} is set but {', '.join(missing)} not: unset WORLD_SIZE, "
                                   "or start the command with torchrun")
    if not dist.is_initialized():
        # a rank may wait a whole batch of another's attacks at a collective: more than gloo's 30-minute default
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(hours=4))
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: float, ctx: DistContext, device: torch.device) -> float:
    """Mean of a scalar over ranks (for logged statistics)."""
    return all_reduce_scalar(value, ctx, device=device) / ctx.world_size


def my_batches(count: int, ctx: DistContext) -> list[int]:
    """The batch indices this rank works on: every ``world_size``-th, starting at its rank."""
    return list(range(ctx.rank, count, ctx.world_size))


def gather_batches(local: list[torch.Tensor], sizes: list[int], ctx: DistContext) -> list[torch.Tensor]:
    """Every batch's tensor in global order, on every rank, from each rank's :func:`my_batches` share.

    ``local``: this rank's per-batch tensors (first dimension: the batch's images; the rest and the dtype the same
    on every rank, and every rank has at least one batch); ``sizes``: every batch's image count.
    """
    if not ctx.enabled:
        return local
    mine = torch.cat(local)
    wire = torch.uint8 if mine.dtype == torch.bool else mine.dtype  # gloo has no bool collectives
    shares = [my_batches(len(sizes), DistContext(rank, ctx.world_size)) for rank in range(ctx.world_size)]
    padded = torch.zeros((max(sum(sizes[b] for b in share) for share in shares), *mine.shape[1:]), dtype=wire)
    padded[: len(mine)] = mine.to(wire)
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    ordered: list[torch.Tensor] = [torch.empty(0)] * len(sizes)
    for part, share in zip(parts, shares, strict=True):
        offset = 0
        for batch in share:
            ordered[batch] = part[offset : offset + sizes[batch]].to(mine.dtype)
            offset += sizes[batch]
    return ordered


def all_reduce_scalar(value: float, ctx: DistContext, op: str = "sum", device: torch.device | None = None) -> float:
    """The ``sum`` or ``max`` of a scalar over ranks (counts; wall-clock seconds of work done in parallel);
    ``device``: where the backend wants tensors (CUDA for NCCL)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
    return tensor.item()
