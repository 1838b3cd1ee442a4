"""Training throughput: a plain fp32 eager loop against the trainer's fast path, same batch, one run.

Usage:
    .venv/bin/python benchmarks/bench_train_speed.py [--data ../shared/data/cifar10/train] [--arch squeezenet_cifar_bn]
        [--batch-size 256] [--threads 1] [--rounds 5] [--steps 8] [--accuracy-epochs 3]

Four loops train the same model from the same initial weights, interleaved round by round (the
machine is shared, so the load changes under us; medians of the rounds are reported):
  plain      per-image decode + torchvision transforms v2 in a DataLoader, fp32, NCHW
  cache      the trainer's uint8 decoded cache with batch augmentation, fp32, NCHW
  cache+cl   the same, channels_last
  fast       the same, channels_last + bf16 autocast (the trainer's default on this CPU)
Then (``--accuracy-epochs``) the plain-precision loop (fp32, NCHW) and the fast path each train a
few epochs on 1000 images per class and are scored on the 5000 validation images, to show bf16
costs no accuracy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402

from squeezenet.data import CIFAR_MEAN, CIFAR_STD, find_images, load_rgb  # noqa: E402
from squeezenet.models import build_model  # noqa: E402
from squeezenet.train import _optimizer, build_training_model, config_for_preset, train_model  # noqa: E402
from squeezenet.training_data import Batching, InputPipeline, epoch_batches, load_image_folder, to_model_input  # noqa: E402

LOOPS = ("plain", "cache", "cache+cl", "fast")


class _PlainDataset(torch.utils.data.Dataset):
    def __init__(self, paths, labels):
        self.paths, self.labels = paths, labels
        self.transform = v2.Compose([v2.ToImage(), v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                                     v2.ToDtype(torch.float32, scale=True), v2.Normalize(CIFAR_MEAN, CIFAR_STD)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.transform(load_rgb(self.paths[index])), self.labels[index]


def _batches(loop: str, train_set, plain_loader, batch_size: int, epoch: int):
    if loop == "plain":
        for images, labels in plain_loader:
            yield images, labels
        return
    pipeline = InputPipeline("cifar", 32, channels_last=loop in ("cache+cl", "fast"))
    for batch in epoch_batches(train_set, Batching(batch_size, train=True), epoch=epoch):
        generator = torch.Generator().manual_seed(batch.augment_seed)
        yield to_model_input(batch.pixels, pipeline, generator=generator), batch.labels


def _images_per_second(loop, model, optimizer, train_set, plain_loader, batch_size, steps, epoch) -> float:
    """Images/s over ``steps`` steps after 2 warm-up steps, input pipeline included."""
    iterator = _batches(loop, train_set, plain_loader, batch_size, epoch)
    start = None
    for step in range(steps + 2):
        if step == 2:
            start = time.perf_counter()
        images, labels = next(iterator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=loop == "fast"):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/cifar10/train"))
    parser.add_argument("--arch", default="squeezenet_cifar_bn")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--accuracy-epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]

    train_set, val_set = load_image_folder(args.data, preset="cifar", image_size=32, val_split=500)
    listing = find_images(args.data)
    train_paths = {str(p) for p in train_set.paths}
    plain_pairs = [(p, l) for p, l in zip(listing.paths, listing.labels) if str(p) in train_paths]
    plain_set = _PlainDataset([p for p, _ in plain_pairs], [l for _, l in plain_pairs])
    plain_loader = torch.utils.data.DataLoader(plain_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                               num_workers=0, generator=torch.Generator().manual_seed(0))
    models, optimizers = {}, {}
    for loop in LOOPS:
        torch.manual_seed(0)
        model = build_model(args.arch, num_classes=10)
        if loop in ("cache+cl", "fast"):
            model = model.to(memory_format=torch.channels_last)
        models[loop], optimizers[loop] = model.train(), _optimizer(model, config_for_preset("fast", data="x", lr=0.05))
    rates: dict[str, list[float]] = {loop: [] for loop in LOOPS}
    for round_index in range(args.rounds):
        for loop in LOOPS:
            rate = _images_per_second(loop, models[loop], optimizers[loop], train_set, plain_loader,
                                      args.batch_size, args.steps, round_index)
            rates[loop].append(rate)
            print(f"round {round_index + 1} {loop:9s} {rate:7.1f} images/s", flush=True)
    median = {loop: statistics.median(values) for loop, values in rates.items()}

    rows = ["| loop | images/s (median) | runs | vs plain |", "|---|---:|---|---:|"]
    for loop in LOOPS:
        runs = ", ".join(f"{v:.0f}" for v in rates[loop])
        rows.append(f"| {loop} | {median[loop]:.0f} | {runs} | {median[loop] / median['plain']:.2f}x |")

    accuracy_rows = []
    if args.accuracy_epochs:
        per_class = np.zeros(10, dtype=int)
        keep = []
        for index, label in enumerate(train_set.labels.tolist()):
            if per_class[label] < 1000:
                per_class[label] += 1
                keep.append(index)
        keep = np.array(keep)
        subset = replace(train_set, paths=[train_set.paths[i] for i in keep], labels=train_set.labels[keep],
                         pixel_rows=train_set.pixel_rows[keep])
        accuracy_rows = ["| precision, layout | val top-1 | val top-5 | train images/s |", "|---|---:|---:|---:|"]
        for name, precision, channels_last in (("fp32, NCHW", "fp32", False), ("bf16, channels_last", "bf16", True)):
            config = config_for_preset("fast", arch=args.arch, data=args.data, epochs=args.accuracy_epochs,
                                       batch_size=args.batch_size, precision=precision, channels_last=channels_last,
                                       threads=args.threads, show_progress=False)
            model = build_training_model(config, num_classes=10)
            result = train_model(model, subset, val_set, config)
            accuracy_rows.append(f"| {name} | {100 * result['top1']:.2f}% | {100 * result['top5']:.2f}% | "
                                 f"{result['images_per_second']:.0f} |")
            print(accuracy_rows[-1], flush=True)

    body = (
        f"{args.arch}, CIFAR-10 32x32, batch {args.batch_size}, {args.threads} thread(s), {args.rounds} interleaved "
        f"rounds of {args.steps} steps (input pipeline included); 1-minute load average {load_before:.2f} at "
        f"the start (2 cores). Machines are shared and noisy: the ratios come from interleaved rounds.\n\n" + "\n".join(rows)
        + "\n\nplain: per-image decode + transforms v2 DataLoader, fp32 NCHW. cache: uint8 decoded cache, "
          "batch augmentation. cl: channels_last. fast: cache + channels_last + bf16 autocast "
          "(this AMD EPYC has AVX512-BF16, no AMX).\n"
    )
    if accuracy_rows:
        body += (f"\nAccuracy, fp32 against the fast path: same seed, same batches, {args.accuracy_epochs} epochs of "
                 f"the fast preset on 1000 images per class, scored on the 5000 validation images (last 500 per "
                 f"class); one seed, so differences of about a point are noise:\n\n" + "\n".join(accuracy_rows) + "\n")
    command = "python benchmarks/bench_train_speed.py " + " ".join(sys.argv[1:])
    write_section("train_speed", "Training speed: plain fp32 loop vs fast path (CPU)", command.strip(), body)
    print(body)


if __name__ == "__main__":
    main()
