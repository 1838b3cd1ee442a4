"""Run-time plumbing of the trainer: processes, device, threads, precision, signals, the run-folder
lock and RNG state. Nothing here knows about models or learning rates; ``squeezenet.train`` calls it.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "RunLock",
    "StopRequest",
    "all_reduced",
    "autocast_dtype",
    "choose_device",
    "distributed_setup",
    "remove_if_unused",
    "replica_difference",
    "restore_rng_state",
    "rng_states",
    "set_threads",
    "stop_requested",
]


def distributed_setup(device_kind: str) -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group when started by torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        cuda = device_kind != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), local_rank


def choose_device(device_kind: str, local_rank: int) -> torch.device:
    """``device_kind`` "auto" (CUDA if present), "cpu" or "cuda"; under DDP the process's own GPU."""
    if device_kind == "cuda" or (device_kind == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but torch sees no CUDA device")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def set_threads(threads: int | None) -> int:
    """``threads``, or when None: torch's default on an idle machine, one thread on a busy one.

    On this 2-core machine shared with other jobs, 2 threads ran 10x SLOWER than 1 (26 vs 253
    images/s, squeezenet_cifar_bn, bf16): every small operator waits at an OpenMP barrier for a
    thread the scheduler has parked. Use processes (torchrun) rather than threads there.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    elif hasattr(os, "getloadavg") and os.getloadavg()[0] >= (os.cpu_count() or 1):
        torch.set_num_threads(1)
    return torch.get_num_threads()


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the hardware runs it fast (CUDA with bf16; CPUs with AVX512-BF16 or AMX),
    measured 2.0x fp32 for squeezenet_cifar_bn on this AMD EPYC (benchmarks/bench_train_speed.py).
    ``precision``: "auto", "bf16" (ValueError where it is slow) or "fp32" (None: no autocast)."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    else:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if precision == "bf16" and not supported:
        raise ValueError(f"--precision bf16 asked for, but this {device.type} has no fast bf16")
    return torch.bfloat16 if supported else None


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after every step, so it can save and stop."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequest":
        # Python only lets the main thread install handlers; elsewhere the signals keep their default.
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame) -> None:
        self.signal = number

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def stop_requested(stop: StopRequest, world_size: int) -> bool:
    """Every process must stop at the same step, so under DDP one signalled process stops them all."""
    if world_size == 1:
        return stop.signal is not None
    flag = torch.tensor([1.0 if stop.signal is not None else 0.0])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if flag.item() and stop.signal is None:
        stop.signal = signal.SIGTERM
    return bool(flag.item())


class RunLock:
    """An exclusive lock on the run folder, released by the OS if the process dies."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "train.lock"
        self.handle = None

    def __enter__(self) -> "RunLock":
        self.handle = open(self.path, "a+")
        try:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no fcntl (Windows): no lock, as before
            pass
        except OSError:
            self.handle.close()
            raise ValueError(f"another training run is using {self.path.parent}; wait for it or choose another --out") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None and not self.handle.closed:
            self.handle.close()


def remove_if_unused(run_folder: Path) -> None:
    """Remove a run folder a failed run created, when it holds nothing but the (released) lock file."""
    contents = list(run_folder.iterdir()) if run_folder.is_dir() else []
    if all(path.name == "train.lock" for path in contents):
        for path in contents:
            path.unlink(missing_ok=True)
        try:
            run_folder.rmdir()
        except OSError:  # another process wrote into it meanwhile: keep it
            pass


def rng_states(device: torch.device, world_size: int) -> list[torch.Tensor]:
    """Every process's RNG state (dropout masks), gathered so rank 0 can save them all."""
    state = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    if world_size == 1:
        return [state]
    states: list = [None] * world_size
    dist.all_gather_object(states, state)
    return states


def restore_rng_state(states: list[torch.Tensor], device: torch.device, rank: int, world_size: int) -> None:
    if len(states) != world_size:
        return  # resumed with another number of processes: keep the fresh per-process seed
    if device.type == "cuda":
        torch.cuda.set_rng_state(states[rank], device)
    else:
        torch.set_rng_state(states[rank])


def all_reduced(values: torch.Tensor, world_size: int) -> torch.Tensor:
    """``values`` summed over the DDP processes (a copy; the argument is left as it is)."""
    values = values.clone()
    if world_size > 1:
        dist.all_reduce(values)
    return values


def replica_difference(model: nn.Module) -> float:
    """Largest difference of any weight between DDP processes (0.0: the replicas are identical)."""
    flat = torch.cat([p.detach().float().reshape(-1) for p in model.parameters()])
    highest, lowest = flat.clone(), flat.clone()
    dist.all_reduce(highest, op=dist.ReduceOp.MAX)
    dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
    return float((highest - lowest).max())
