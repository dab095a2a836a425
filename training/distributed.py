"""Distributed training under ``torchrun``: process group, device, model wrapping, sampling, collectives.

Without torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) everything degrades to one process.
Backend: NCCL on CUDA, gloo on the CPU. Only rank 0 logs and writes checkpoints.
"""
import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from matte_ros.core.settings import resolve_device

__all__ = ["DistContext", "setup", "teardown", "wrap", "unwrap", "ResumableSampler", "any_true", "gather_objects",
           "barrier"]


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _pick_device(name: str, local_rank: int) -> torch.device:
    """``name`` resolved and checked (:func:`~matte_ros.core.settings.resolve_device`); a CUDA
    device given without an index ("auto", "cuda") is the local rank's GPU."""
    device = resolve_device(name)
    if device.type == "cuda":
        if name in ("auto", "cuda"):
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def setup(device: str = "auto") -> DistContext:
    """Join the torchrun process group when its environment is present; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, dev)


def teardown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, ctx: DistContext, sync_bn: bool = False, find_unused: bool = False) -> nn.Module:
    """Move to the device; under DDP optionally convert BatchNorm to SyncBatchNorm and wrap."""
    if ctx.distributed and sync_bn:
        if ctx.device.type != "cuda":
            raise ValueError("--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm does not run on the CPU)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(ctx.device)
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class ResumableSampler(Sampler):
    """DistributedSampler (shuffled by seed + epoch, this rank's share) that can skip the first indices
    of an epoch, so a resumed run continues with exactly the batches the interrupted one had left."""

    def __init__(self, dataset: Dataset, ctx: DistContext, seed: int, shuffle: bool = True):
        self.inner = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle,
                                        seed=seed, drop_last=True)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.skip = int(skip)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip:])

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)


def any_true(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if not ctx.distributed:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(obj: Any, ctx: DistContext) -> List[Any]:
    """Every rank's ``obj``, in rank order (a one-element list without DDP)."""
    if not ctx.distributed:
        return [obj]
    out: List[Optional[Any]] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()
