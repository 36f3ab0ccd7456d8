"""Runs started by PyTorch's own launcher, torchrun: one process per GPU (or CPU worker).

torchrun describes each process in its environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT); `session()` joins the process group it describes, NCCL for GPUs and gloo for CPUs.
Without those variables, or with a world of one, nothing here starts a group: every helper then
behaves as the single process it is (rank 0 of 1), so plain `galcolor` runs are unchanged.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
import torch.distributed as dist

from ..errors import GalcolorError
from ..models.device import resolve_device

T = TypeVar("T")

# Ranks wait on each other for long stretches that are not hangs: rank 0 validating and writing
# checkpoints, or the last shard of a big colorize still running. These waits go through a CPU
# (gloo) group with this generous timeout, so that NCCL's watchdog never fires on them.
CONTROL_TIMEOUT = timedelta(hours=6)
_LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
_control_group = None


def _environment_int(name: str) -> int:
    text = os.environ.get(name, "")
    try:
        value = int(text)
    except ValueError:
        raise GalcolorError(f"environment variable {name}={text!r} is not a whole number (set by torchrun)") from None
    if value < 0:
        raise GalcolorError(f"environment variable {name}={value} is negative (set by torchrun)")
    return value


def launched() -> bool:
    """True in a process that torchrun started as one of several."""
    return all(name in os.environ for name in _LAUNCH_VARIABLES) and _environment_int("WORLD_SIZE") > 1


def world() -> int:
    return _environment_int("WORLD_SIZE") if launched() else 1


def rank() -> int:
    return _environment_int("RANK") if launched() else 0


def local_rank() -> int:
    """This process's index on its own machine: which GPU it drives."""
    return _environment_int("LOCAL_RANK") if launched() else 0


def is_main() -> bool:
    """Rank 0 validates, writes the run folder and reports; the others only compute."""
    return rank() == 0


def active() -> bool:
    """True while this process belongs to a process group of several."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@contextmanager
def session(device_name: str = "auto") -> Iterator[torch.device]:
    """The device this process works on, inside the torchrun process group when there is one.

    Under torchrun on GPUs each process takes the GPU of its LOCAL_RANK (and makes it the current
    CUDA device, so a plain "cuda" means that GPU too). A group that already exists is used as it
    is and left open; one started here is closed on the way out.
    """
    global _control_group
    device = resolve_device(device_name)
    if not launched():
        yield device
        return
    if device.type == "cuda":
        device = _this_ranks_gpu()
        torch.cuda.set_device(device)
    if dist.is_initialized():
        yield device
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
        _control_group = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    except Exception as err:  # a rendezvous that failed: one line, not the c10d traceback
        if dist.is_initialized():
            dist.destroy_process_group()
        raise GalcolorError(f"torchrun: rank {rank()} could not join the {backend} process group: {_first_line(err)}") from None
    try:
        yield device
    finally:
        _control_group = None
        dist.destroy_process_group()


def _this_ranks_gpu() -> torch.device:
    visible = torch.cuda.device_count()
    if local_rank() >= visible:
        raise GalcolorError(
            f"torchrun: LOCAL_RANK {local_rank()} has no GPU of its own, only {visible} visible here; "
            f"start at most {visible} processes per node (--nproc-per-node)"
        )
    return torch.device("cuda", local_rank())


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def barrier() -> None:
    if active():
        dist.barrier(group=_control_group)


def shard(items: Sequence[T], of_rank: int | None = None, of_world: int | None = None) -> list[T]:
    """This rank's share of a list that every rank holds in the same order: items[rank::world].

    Interleaved rather than in blocks, so a list sorted by size or folder spreads its heavy end."""
    of_rank = rank() if of_rank is None else of_rank
    of_world = world() if of_world is None else of_world
    return list(items[of_rank::of_world])


def gather(items: Sequence[T]) -> list[T]:
    """Every rank's items, rank 0's first, on every rank."""
    if not active():
        return list(items)
    collected: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(collected, list(items), group=_control_group)
    return [item for part in collected for item in part]


def run_on_main(work: Callable[..., T], *args: Any) -> T:
    """work(*args) on rank 0 alone; every rank returns its result, or raises its error.

    The other ranks wait meanwhile, which makes this the barrier after which rank 0's files exist."""
    if not active():
        return work(*args)
    box: list[Any] = [None]
    failure = None
    if is_main():
        try:
            box[0] = ("ok", work(*args))
        except Exception as err:
            failure = err
            box[0] = ("failed", _describe(err))
    dist.broadcast_object_list(box, src=0, group=_control_group)
    if failure is not None:
        raise failure
    status, value = box[0]
    if status == "failed":
        raise GalcolorError(value)
    return value


def _describe(err: Exception) -> str:
    if isinstance(err, GalcolorError):
        return str(err)
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or err}"
    return f"rank 0 stopped: {type(err).__name__}: {_first_line(err)}"


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all ranks (NaN when any rank's is NaN); itself in one process."""
    if not active():
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def average_gradients(module: torch.nn.Module) -> None:
    """Average the gradients of a module that is not wrapped in DistributedDataParallel, in one all-reduce."""
    if not active():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def data_parallel(network: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module that training forwards through: `network` itself in one process, else its
    DistributedDataParallel wrapper (which averages gradients in backward). On GPUs batch norm
    becomes SyncBatchNorm first, so its statistics cover the whole global batch rather than one
    GPU's slice of it. The wrapper shares `network`'s parameters, so saving `network` saves the model."""
    if not active():
        return network
    if device.type == "cuda":
        # The converted layers reuse the same Parameter and buffer tensors, so an optimizer built on
        # `network`, and saving `network`, still reach the trained values.
        network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)
