"""Bytes all-reduced per DDP training step, SqueezeNet vs AlexNet: the paper's first advantage as a number.

Usage:
    .venv/bin/python benchmarks/bench_ddp_bytes.py [--steps 3]

Iandola et al. (2016), Section 1: "More efficient distributed training ... communication overhead
is directly proportional to the number of parameters in the model." Two CPU processes (gloo) train
each model for a few steps under DistributedDataParallel; a communication hook counts the bytes of
every gradient bucket it all-reduces (fp32, PyTorch's default hook) and times the step.
"""


import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402

from squeezenet.models import build_model, count_parameters  # noqa: E402

MODELS = ("squeezenet1_0", "squeezenet1_1", "alexnet", "squeezenet_cifar_bn", "alexnet_cifar")


class _ByteCounter:
    def __init__(self) -> None:
        self.bytes = 0
        self.buckets = 0


def _counting_hook(counter: _ByteCounter, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    # No `from __future__ import annotations` in this file: DDP checks that this annotation IS dist.GradBucket.
    buffer = bucket.buffer()
    counter.bytes += buffer.numel() * buffer.element_size()
    counter.buckets += 1
    return default_hooks.allreduce_hook(None, bucket)


def _worker(rank: int, world_size: int, port: int, steps: int, results: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    lines = []
    for arch in MODELS:
        torch.manual_seed(0)
        model = build_model(arch)
        size = model.spec.input_size
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        counter = _ByteCounter()
        ddp.register_comm_hook(counter, _counting_hook)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=1e-3, momentum=0.9)
        images = torch.randn(2, 3, size, size)
        labels = torch.randint(0, model.spec.num_classes, (2,))
        seconds = []
        for _ in range(steps):
            start = time.perf_counter()
            loss = F.cross_entropy(ddp(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seconds.append(time.perf_counter() - start)
        lines.append(f"{arch}\t{count_parameters(model)}\t{counter.bytes // steps}\t{counter.buckets // steps}\t"
                     f"{sorted(seconds)[len(seconds) // 2]:.3f}")
        dist.barrier()
    if rank == 0:
        Path(results).write_text("\n".join(lines) + "\n")
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        results = str(Path(folder) / "results.tsv")
        mp.spawn(_worker, args=(2, port, args.steps, results), nprocs=2, join=True)
        rows = [line.split("\t") for line in Path(results).read_text().splitlines()]
    table = {arch: (int(params), int(sent), int(buckets), float(step)) for arch, params, sent, buckets, step in rows}
    lines = ["| model | parameters | bytes all-reduced per step | buckets | AlexNet's bytes / these | median step (s, 2 images/process) |",
             "|---|---:|---:|---:|---:|---:|"]
    for arch, (params, sent, buckets, step) in table.items():
        reference = table["alexnet_cifar" if "cifar" in arch else "alexnet"][1]
        lines.append(f"| {arch} | {params:,} | {sent:,} ({sent / 2**20:.1f} MiB) | {buckets} | "
                     f"{reference / sent:.1f}x | {step:.3f} |")
    body = (
        "2 CPU processes, gloo, DistributedDataParallel with a communication hook wrapping PyTorch's default "
        "fp32 all-reduce hook; the hook adds up the size of every gradient bucket it sends, per step "
        f"(median of {args.steps} steps). ImageNet models at 224x224 with 1000 classes; the CIFAR pair at 32x32 "
        "with 10 classes (compared with alexnet_cifar). Each process sends and receives about this many bytes per "
        "step with a ring all-reduce (2(N-1)/N times the bucket bytes). Step times are on a shared 2-core CPU "
        "and only indicative.\n\n" + "\n".join(lines) + "\n"
    )
    write_section("ddp_bytes", "DDP: bytes all-reduced per step, SqueezeNet vs AlexNet",
                  "python benchmarks/bench_ddp_bytes.py " + " ".join(sys.argv[1:]), body)
    print(body)


if __name__ == "__main__":
    main()
