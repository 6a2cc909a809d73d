"""Data-parallel training under ``torchrun``: one process per device or CPU share.

``torchrun --nproc_per_node=N -m neuralcodec train ...`` (or ``aec train --nproc N``)
starts N copies of the trainer. Each draws its own crops and rate levels (its own random
streams), gradients are averaged across processes (PyTorch's DistributedDataParallel
for the model, an all-reduce for the entropy bottleneck's auxiliary loss), so every
process holds the same weights after every step; rank 0 alone logs, evaluates and
writes checkpoints, which carry every rank's random streams so a resumed run continues
exactly. gloo on CPU, NCCL on CUDA. Without torchrun's environment this is a no-op
world of one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This process's device: its own GPU under torchrun on CUDA."""
        if self.distributed and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any (ranks must agree to stop)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Average the gradients of ``params`` across ranks (those DDP does not see)."""
        if not self.distributed:
            return
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.size

    def gather(self, obj: object) -> list[object]:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if not self.distributed:
            return [obj]
        objs: list[object] = [None] * self.size
        dist.all_gather_object(objs, obj)
        return objs

    def _comm_device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def init_world(device: torch.device) -> World:
    """Join torchrun's process group if its environment says so (else a world of one)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend)
    return world


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """The module the training step calls: DDP over ``model`` in a world of several."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.local_rank] if next(model.parameters()).is_cuda else None
    # The coding tables (buffers) do not change in training: no per-step broadcast.
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter's bytes: equal digests mean identical replicas."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
