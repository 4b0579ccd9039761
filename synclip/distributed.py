"""Data-parallel training on several processes (``torchrun --nproc_per_node N -m synclip train ...``, also across
machines with ``--nnodes`` and a rendezvous), on PyTorch's own DistributedDataParallel.

The aim is one result whatever the number of processes: N processes with training.batch_size B train as one
process with batch B. So every process draws the whole batch's chunks and random jitter from the same seeds
and builds only its own B/N of them; batch norm computes its statistics over the whole batch (``GlobalBatchNorm``
on CPU, PyTorch's SyncBatchNorm on GPUs); the sync expert's loss, which sets every window of the batch against
every other, gathers the embeddings of all processes first. Launched without torchrun, nothing here is used.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 logs, evaluates and writes checkpoints)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def part(self, batch: int) -> slice:
        """This process's rows of a global batch of ``batch`` chunks."""
        if batch % self.size:
            raise ConfigError(f"training.batch_size = {batch} does not split over {self.size} processes",
                              fix=f"use a multiple of {self.size}, e.g. --set training.batch_size="
                                  f"{(batch // self.size + 1) * self.size}")
        n = batch // self.size
        return slice(self.rank * n, (self.rank + 1) * n)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` with whole-batch batch norm, in DistributedDataParallel (itself when not parallel).
        The norms keep their parameter objects, so an optimiser made before still holds them."""
        if not self.parallel:
            return model
        to_global_batch_norm(model, sync_cuda=device.type == "cuda")
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every process's ``x`` concatenated on dim 0, in rank order; the gradient flows back to each owner."""
        if not self.parallel:
            return x
        if not x.is_floating_point():  # labels and flags: no gradient (gloo has no bool: sent as int64)
            y = x.to(torch.int64).contiguous()
            parts = [torch.empty_like(y) for _ in range(self.size)]
            dist.all_gather(parts, y)
            return torch.cat(parts).to(x.dtype)
        return torch.cat(dist.nn.functional.all_gather(x.contiguous()))

    def mean(self, stats: dict[str, float]) -> dict[str, float]:
        """Statistics averaged over the processes (what one process with the whole batch would log)."""
        if not self.parallel or not stats:
            return stats
        keys = sorted(stats)
        t = torch.tensor([stats[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: float(v) / self.size for k, v in zip(keys, t)}

    def average_gradients(self, model: nn.Module) -> None:
        """By hand, for a module that runs several forwards per step (the discriminator), which DDP cannot wrap."""
        if not self.parallel:
            return
        for p in model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.size

    def barrier(self) -> None:
        if self.parallel:
            dist.barrier()


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*);
    return this process's World and its device (cuda:LOCAL_RANK on GPUs). Without torchrun: World(), device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), device
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        # torchrun answers Ctrl+C by sending its workers SIGTERM: make that a KeyboardInterrupt too, so rank 0
        # still writes last.pth.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    return world, device


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class GlobalBatchNorm(_BatchNorm):
    """Batch norm whose training statistics span every process's part of the batch (CPU and GPU; gloo has no
    SyncBatchNorm). Same parameters and buffers as nn.BatchNorm1d/2d, so checkpoints do not change; with
    one process, or in eval mode, it is plain batch norm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor(float(x.numel() // x.shape[1]), dtype=x.dtype, device=x.device)
        dist.all_reduce(count)
        # Two passes (mean, then the spread around it) as batch norm itself does; the autograd all_reduce sends
        # each process's gradient of the shared sums back to every process.
        mean = dist.nn.functional.all_reduce(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = dist.nn.functional.all_reduce(centred.square().sum(dims)) / count
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * count / (count - 1).clamp(min=1))
        return y


def to_global_batch_norm(model: nn.Module, sync_cuda: bool) -> None:
    """Replace every batch norm inside ``model`` (in place) by one over the whole batch: PyTorch's SyncBatchNorm
    on GPUs, GlobalBatchNorm elsewhere. The parameter and buffer objects move over unchanged."""
    for name, child in model.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, (GlobalBatchNorm, nn.SyncBatchNorm)):
            kind = nn.SyncBatchNorm if sync_cuda else GlobalBatchNorm
            new = kind(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(model, name, new)
        else:
            to_global_batch_norm(child, sync_cuda)
