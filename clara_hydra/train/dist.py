"""The process group as one rank of a DDP job sees it (:mod:`.ddp` starts the ranks): which rank
this is, how many there are, rank 0's value everywhere, the network in and out of
DistributedDataParallel. One process alone is rank 0 of 1."""

from __future__ import annotations

from typing import Any


def rank() -> int:
    import torch.distributed as dist
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world() -> int:
    import torch.distributed as dist
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a pruning decision)."""
    if world() == 1:
        return value
    import torch.distributed as dist
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(network, device: str):
    """The training network in DistributedDataParallel (its parameters start as rank 0's)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel
    if device == "cuda":
        return DistributedDataParallel(network, device_ids=[torch.cuda.current_device()])
    return DistributedDataParallel(network)


def same_buffers(network) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank: DDP syncs them only before a
    training step, and each rank's last step updated its own; validation scores one model."""
    import torch.distributed as dist
    for buffer in unwrapped(network).buffers():
        dist.broadcast(buffer, src=0)


def unwrapped(network):
    """The network inside a DistributedDataParallel (a checkpoint holds the plain network's keys)."""
    return getattr(network, "module", network)


__all__ = ["rank", "world", "from_main", "wrap", "same_buffers", "unwrapped"]
