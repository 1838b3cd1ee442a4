"""Train an image classifier on an ImageFolder: this CPU, a GPU, or many processes through DDP.

Usage:
    squeezenet train --arch squeezenet_cifar_bn --data ../shared/data/cifar10/train --val-split 500 \\
        --preset fast --epochs 30 --out runs/cifar
    torchrun --nproc-per-node 2 -m squeezenet train ...   # same arguments: the batch is global
    squeezenet train ... --out runs/cifar --resume         # continue after a crash or Ctrl-C

From Python:
    metrics = train(config_for_preset("paper", arch="squeezenet1_0", data="imagenet/train", out="run"))
    metrics = train_model(model, train_set, val_set, config)   # an existing (e.g. pruned) model
    evaluate_accuracy(model, val_set)                          # {"top1", "top5", "images"}

Presets: ``paper`` is the solver of Iandola et al. (2016): SGD, momentum 0.9, weight decay 2e-4,
base learning rate 0.04 with linear decay ("poly", power 1), global batch 512. ``fast`` is for small
data sets on a CPU budget: Nesterov SGD, one-cycle schedule, label smoothing, no decay on BN/bias.

A run folder holds ``last.pth`` (everything needed to resume: optimizer, step, RNG; written
atomically every epoch and on SIGINT/SIGTERM), ``metrics.jsonl`` (one line per epoch) and
``final.pth`` (a checkpoint for `squeezenet evaluate/predict/compress`). Only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from squeezenet.models import SqueezeNet, build_model, model_from_spec, weight_layers
from squeezenet.progress import progress
from squeezenet.safe_io import atomic_write_bytes
from squeezenet.test_time_augmentation import augmented_logits
from squeezenet.training_data import (
    AUGMENT_PRESETS,
    DEFAULT_CACHE_LIMIT_BYTES,
    ImageSet,
    epoch_batches,
    load_image_folder,
    to_model_input,
)
from squeezenet.weights import save_checkpoint

__all__ = [
    "PRESETS",
    "TrainConfig",
    "build_training_model",
    "training_model_from_spec",
    "config_for_preset",
    "evaluate_accuracy",
    "learning_rate",
    "load_datasets",
    "train",
    "train_model",
    "training_autocast_dtype",
    "training_crop_side",
]


@dataclass
class TrainConfig:
    # I/O
    arch: str = "squeezenet_cifar_bn"
    data: str = ""  # ImageFolder: DIR/<class>/<image>
    val_data: str | None = None  # a separate validation folder, or ...
    val_split: int = 0  # ... the last K images of every class of `data`
    out: str | None = None  # run folder; None writes nothing (for retraining from Python)
    resume: bool = False
    # data
    augment: str = "auto"  # "cifar", "imagenet", or "auto": cifar for inputs of 64 pixels or less
    cache_dir: str | None = None  # decoded-image cache; default ~/.cache/squeezenet/decoded-images
    cache_limit_bytes: int = DEFAULT_CACHE_LIMIT_BYTES  # larger sets stream through DataLoader workers
    workers: int = 2
    # model
    dropout: float | None = None  # overrides the architecture's dropout
    # optimizer (defaults are the fast preset)
    preset: str = "fast"
    epochs: int = 30
    batch_size: int = 512  # global: split across DDP processes
    lr: float = 0.4  # peak (one-cycle) or base (poly) learning rate, for the global batch
    schedule: str = "one_cycle"  # "poly" (power 1, the paper) or "one_cycle"
    warmup_fraction: float = 0.2  # one-cycle: share of the steps rising to the peak
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    decay_norm_and_bias: bool = False  # apply weight decay to BN scales/shifts and biases too
    label_smoothing: float = 0.1
    clip_grad_norm: float | None = None  # clip the global gradient norm to this
    classifier_lr_scale: float = 0.1  # learning-rate factor of the last weight layer
    # system
    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda"
    precision: str = "auto"  # "auto" (bf16 where the hardware has it), "bf16", "fp32"
    channels_last: bool = True
    threads: int | None = None  # torch CPU threads per process; None: see _set_threads
    seed: int = 0
    eval_batch_size: int = 500
    eval_flip: bool = False  # validation sums each image's logits with its mirror image's
    eval_shift: int = 0  # validation also scores copies shifted this many pixels (test_time_augmentation)
    eval_every: int = 1  # validate after every K-th epoch and after the last
    # A cheaper first phase: the first `low_res_fraction` of the epochs train on random crops of
    # `low_res_side` pixels (same object scale, fewer pixels), the rest at the full input size.
    low_res_side: int | None = None
    low_res_fraction: float = 0.5
    show_progress: bool = True
    on_bad_image: str = "skip"  # unreadable images: "skip" (counted in the result) or "fail" at the first

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be positive, got {self.lr}")
        if self.schedule not in ("poly", "one_cycle"):
            raise ValueError(f"unknown schedule {self.schedule!r}; choose poly or one_cycle")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.augment not in ("auto", *AUGMENT_PRESETS):
            raise ValueError(f"unknown augmentation {self.augment!r}; choose auto, {', '.join(AUGMENT_PRESETS)}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"unknown precision {self.precision!r}; choose auto, bf16 or fp32")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}; choose auto, cpu or cuda")
        if self.val_split and self.val_data:
            raise ValueError("give either a validation folder or a validation split, not both")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.classifier_lr_scale > 0:
            raise ValueError(f"classifier learning-rate scale must be positive, got {self.classifier_lr_scale}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"gradient clipping norm must be positive, got {self.clip_grad_norm}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.eval_every < 1:
            raise ValueError(f"eval-every must be at least 1, got {self.eval_every}")
        if self.eval_shift < 0:
            raise ValueError(f"eval-shift must be at least 0 pixels, got {self.eval_shift}")
        if not 0 <= self.low_res_fraction < 1:
            raise ValueError(f"low-resolution fraction must be in [0, 1), got {self.low_res_fraction}")
        if self.low_res_side is not None and self.low_res_side < 8:
            raise ValueError(f"low-resolution side must be at least 8 pixels, got {self.low_res_side}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.workers < 0:
            raise ValueError(f"workers must be at least 0, got {self.workers}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight decay must be at least 0, got {self.weight_decay}")


PRESETS: dict[str, dict] = {
    # Iandola et al. 2016, solver.prototxt of the SqueezeNet release.
    "paper": dict(lr=0.04, schedule="poly", warmup_fraction=0.0, momentum=0.9, nesterov=False,
                  weight_decay=2e-4, decay_norm_and_bias=True, label_smoothing=0.0, batch_size=512,
                  classifier_lr_scale=1.0),
    # The classifier's learning rate is 10x lower: SqueezeNet's class scores pass a ReLU, and at
    # the body's rate single steps pushed whole classes below zero for good (4-epoch runs on 15k
    # CIFAR-10 images: 2-5 of 10 classes never predicted at 1x, none at 0.1x; see build_training_model).
    # Peak 0.4 beat 0.2 there (54.5% vs 48.2% top-1 after 4 epochs).
    "fast": dict(lr=0.4, schedule="one_cycle", warmup_fraction=0.2, momentum=0.9, nesterov=True,
                 weight_decay=5e-4, decay_norm_and_bias=False, label_smoothing=0.1, batch_size=512,
                 classifier_lr_scale=0.1),
}


def config_for_preset(preset: str, **overrides) -> TrainConfig:
    """A TrainConfig with the preset's optimizer settings, then ``overrides`` (None values ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    chosen = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(preset=preset, **chosen)


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """The learning rate of optimizer step ``step`` (0-based) out of ``total_steps``.

    poly (the paper, power 1): lr * (1 - step / total_steps).
    one_cycle: a linear rise from lr/10 to lr over the warmup fraction, then a linear fall to 0.
    """
    progress_fraction = step / max(1, total_steps)
    if config.schedule == "poly":
        return config.lr * (1.0 - progress_fraction)
    if progress_fraction < config.warmup_fraction:
        return config.lr * (0.1 + 0.9 * progress_fraction / config.warmup_fraction)
    return config.lr * (1.0 - progress_fraction) / (1.0 - config.warmup_fraction)


def training_crop_side(epoch: int, config: TrainConfig) -> int | None:
    """The side of epoch ``epoch``'s (0-based) random training crops: ``low_res_side`` during the
    low-resolution phase, else None (the full input size)."""
    if config.low_res_side is None or epoch >= round(config.low_res_fraction * config.epochs):
        return None
    return config.low_res_side


def _augment_preset(config: TrainConfig, input_size: int) -> str:
    if config.augment != "auto":
        return config.augment
    return "cifar" if input_size <= 64 else "imagenet"


def load_datasets(config: TrainConfig, input_size: int) -> tuple[ImageSet, ImageSet | None]:
    """The training set and the validation set (``val_data`` folder, ``val_split``, or none)."""
    if not config.data:
        raise ValueError("no training data folder given (--data DIR)")
    preset = _augment_preset(config, input_size)
    common = dict(preset=preset, image_size=input_size, cache_dir=config.cache_dir,
                  cache_limit_bytes=config.cache_limit_bytes, workers=config.workers,
                  show_progress=config.show_progress)
    train_set, val_set = load_image_folder(config.data, val_split=config.val_split, **common)
    if config.val_data:
        val_set, _ = load_image_folder(config.val_data, **common)
        if val_set.class_names != train_set.class_names:
            raise ValueError(f"validation folder {config.val_data} has other classes than {config.data}")
    for image_set in (train_set, val_set):
        if config.on_bad_image == "fail" and image_set is not None and image_set.skipped:
            raise ValueError(f"{image_set.skipped[0]}: not a readable image (--on-bad-image fail)")
    return train_set, val_set


def _device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but torch sees no CUDA device")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def training_autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the hardware runs it fast (CUDA with bf16; CPUs with AVX512-BF16 or AMX),
    measured 2.0x fp32 for squeezenet_cifar_bn on this AMD EPYC (benchmarks/bench_train_speed.py)."""
    if config.precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    else:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if config.precision == "bf16" and not supported:
        raise ValueError(f"--precision bf16 asked for, but this {device.type} has no fast bf16")
    return torch.bfloat16 if supported else None


def _distributed_setup(device_kind: str) -> tuple[int, int, int]:
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


def _set_threads(config: TrainConfig) -> int:
    """``config.threads``, or when unset: torch's default on an idle machine, one thread on a busy one.

    On this 2-core machine shared with other jobs, 2 threads ran 10x SLOWER than 1 (26 vs 253
    images/s, squeezenet_cifar_bn, bf16): every small operator waits at an OpenMP barrier for a
    thread the scheduler has parked. Use processes (torchrun) rather than threads there.
    """
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    elif hasattr(os, "getloadavg") and os.getloadavg()[0] >= (os.cpu_count() or 1):
        torch.set_num_threads(1)
    return torch.get_num_threads()


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD over ``model.parameters()`` (parametrized weights train their ``original`` tensors).

    Groups: (decayed or not) x (last weight layer or not); each group's ``lr_scale`` multiplies the
    scheduled learning rate.
    """
    last = weight_layers(model)[-1][1]
    classifier = {id(p) for p in last.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for parameter in model.parameters():
        if parameter.requires_grad:
            decayed = parameter.ndim > 1 or config.decay_norm_and_bias
            groups.setdefault((decayed, id(parameter) in classifier), []).append(parameter)
    return torch.optim.SGD(
        [{"params": params, "weight_decay": config.weight_decay if decayed else 0.0,
          "lr_scale": config.classifier_lr_scale if in_classifier else 1.0}
         for (decayed, in_classifier), params in groups.items()],
        lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    images: ImageSet,
    *,
    batch_size: int = 500,
    device: torch.device | str | None = None,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = True,
    flip: bool = False,
    shift: int = 0,
) -> dict:
    """Top-1 and top-5 accuracy (fractions) of ``model`` on an ImageSet, centre crops, no augmentation.

    ``flip`` and ``shift`` are test-time augmentation (see ``test_time_augmentation``): the logits of
    each image are summed with its left-right mirror's (twice the compute) and, with ``shift``, with
    those of copies moved by that many pixels (three times).
    Under DDP every process scores its share of the images and the counts are summed.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    was_training = model.training
    model.eval()
    counts = torch.zeros(3, dtype=torch.float64, device=device)
    for batch in epoch_batches(images, batch_size=batch_size, epoch=0, seed=0, train=False,
                               rank=rank, world_size=world_size):
        inputs = to_model_input(batch.pixels, images.preset, device, image_size=images.image_size,
                                channels_last=channels_last)
        labels = batch.labels.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            logits = augmented_logits(model, inputs, flip=flip, shift=shift)
        best = logits.topk(min(5, logits.shape[1]), dim=1).indices
        counts[0] += (best[:, 0] == labels).sum()
        counts[1] += (best == labels[:, None]).any(dim=1).sum()
        counts[2] += len(labels)
    if world_size > 1:
        dist.all_reduce(counts)
    model.train(was_training)
    seen = int(counts[2])
    if seen == 0:
        raise ValueError("no images to evaluate")
    return {"top1": float(counts[0]) / seen, "top5": float(counts[1]) / seen, "images": seen}


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after every step, so it can save and stop."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame) -> None:
        self.signal = number

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class _RunLock:
    """An exclusive lock on the run folder, released by the OS if the process dies."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "train.lock"
        self.handle = None

    def __enter__(self) -> "_RunLock":
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
        self.handle.close()


def _remove_if_unused(run_folder: Path, lock: "_RunLock | None") -> None:
    """Remove a run folder this call created when the run failed before writing anything but its lock."""
    if lock is not None and lock.handle is not None:
        lock.handle.close()
    contents = list(run_folder.iterdir()) if run_folder.is_dir() else []
    if all(path.name == "train.lock" for path in contents):
        for path in contents:
            path.unlink(missing_ok=True)
        try:
            run_folder.rmdir()
        except OSError:  # another process wrote into it meanwhile: keep it
            pass


def _load_resume_state(run_folder: Path, model: nn.Module, config: TrainConfig) -> dict:
    path = run_folder / "last.pth"
    if not path.exists():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file means the same to the user
        raise ValueError(f"{path}: not a readable training checkpoint ({' '.join(str(error).split())[:120]})") from None
    if not isinstance(state, dict) or "optimizer" not in state or "config" not in state:
        raise ValueError(f"{path}: not a training checkpoint (no optimizer state)")
    previous_arch = state["config"].get("arch")
    if previous_arch != config.arch or state.get("spec") != model.spec.to_dict():
        raise ValueError(f"{path} is a run of {previous_arch}, not of {config.arch} with these settings; "
                         "resume it with the same --arch or choose another --out")
    # Another training or validation set would silently change what the resumed run learns or reports.
    for option, key in (("--data", "data"), ("--val-data", "val_data"), ("--val-split", "val_split")):
        before, now = state["config"].get(key), getattr(config, key)
        if _data_setting(key, before) != _data_setting(key, now):
            raise ValueError(f"{path} was trained with {option} {_shown(before)}, not {_shown(now)}; "
                             f"resume with the same {option} or choose another --out")
    return state


def _data_setting(key: str, value):
    """A data option in comparable form: folders by their real path, an unset option as None."""
    if key == "val_split":
        return int(value or 0)
    return os.path.realpath(value) if value else None


def _shown(value) -> str:
    return "(none)" if value in (None, "") else str(value)


def _rng_states(device: torch.device, world_size: int) -> list[torch.Tensor]:
    """Every process's RNG state (dropout masks), gathered so rank 0 can save them all."""
    state = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    if world_size == 1:
        return [state]
    states: list = [None] * world_size
    dist.all_gather_object(states, state)
    return states


def _restore_rng(states: list[torch.Tensor], device: torch.device, rank: int, world_size: int) -> None:
    if len(states) != world_size:
        return  # resumed with another number of processes: keep the fresh per-process seed
    if device.type == "cuda":
        torch.cuda.set_rng_state(states[rank], device)
    else:
        torch.set_rng_state(states[rank])


def _save_training_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig,
                         *, epoch: int, step: int, loss_sum: float, loss_count: int, history: list[dict],
                         class_names: tuple[str, ...], elapsed: float, rng_states: list[torch.Tensor]) -> None:
    save_checkpoint(path, model, optimizer=optimizer.state_dict(), config=asdict(config), epoch=epoch, step=step,
                    loss_sum=loss_sum, loss_count=loss_count, history=history, classes=list(class_names),
                    rng_states=rng_states, elapsed=elapsed)


def _replica_difference(model: nn.Module) -> float:
    """Largest difference of any weight between DDP processes (0.0: the replicas are identical)."""
    flat = torch.cat([p.detach().float().reshape(-1) for p in model.parameters()])
    highest, lowest = flat.clone(), flat.clone()
    dist.all_reduce(highest, op=dist.ReduceOp.MAX)
    dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
    return float((highest - lowest).max())


def train_model(
    model: nn.Module,
    train_set: ImageSet,
    val_set: ImageSet | None,
    config: TrainConfig,
    *,
    on_epoch: Callable[[dict, nn.Module], None] | None = None,
) -> dict:
    """Train ``model`` in place and return the final metrics.

    The optimizer trains ``model.parameters()`` as they are, so masks or tied codebooks held by
    parametrizations stay in force. Under torchrun the model is wrapped in DistributedDataParallel
    here. With ``config.out`` set, the run folder is locked and checkpoints are written there.
    ``on_epoch(record, model)`` is called after every epoch with the metrics record.
    """
    if len(train_set) < config.batch_size:
        raise ValueError(f"the batch size {config.batch_size} is larger than the {len(train_set)} training images; "
                         f"pass --batch-size N (at most {len(train_set)})")
    if config.low_res_side is not None and config.low_res_side >= train_set.image_size:
        raise ValueError(f"the low-resolution side {config.low_res_side} must be smaller than the input size "
                         f"{train_set.image_size}")
    if config.eval_shift >= train_set.image_size:
        # Caught here, not at the first validation an epoch later.
        raise ValueError(f"the evaluation shift of {config.eval_shift} pixels must be smaller than the input size "
                         f"{train_set.image_size}")
    rank, world_size, local_rank = _distributed_setup(config.device)
    if config.batch_size % world_size:
        raise ValueError(f"the global batch size {config.batch_size} does not split over {world_size} processes")
    threads = _set_threads(config)
    device = _device(config, local_rank)
    autocast_dtype = training_autocast_dtype(config, device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    module = model
    if world_size > 1:
        if device.type == "cuda" and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            module = model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(module, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizer = _optimizer(module, config)
    steps_per_epoch = len(train_set) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    run_folder = Path(config.out) if config.out else None
    writes = run_folder is not None and rank == 0

    start_epoch = start_step = 0
    loss_sum, loss_count, history, elapsed = 0.0, 0, [], 0.0
    torch.manual_seed(config.seed * 1000 + rank)  # dropout masks differ per process, as they should
    if device.type == "cuda":
        torch.cuda.manual_seed(config.seed * 1000 + rank)
    created_folder = False
    if run_folder is not None:
        # Every check before the folder is made, so a refused run leaves nothing behind.
        if run_folder.exists() and not run_folder.is_dir():
            raise ValueError(f"--out {run_folder} is a file; give a run folder")
        if config.resume:
            state = _load_resume_state(run_folder, module, config)
            module.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, start_step = state["epoch"], state["step"]
            loss_sum, loss_count, history, elapsed = state["loss_sum"], state["loss_count"], state["history"], state["elapsed"]
            _restore_rng(state["rng_states"], device, rank, world_size)
        elif (run_folder / "last.pth").exists() and rank == 0:
            raise ValueError(f"{run_folder} already holds a run; pass --resume to continue it or choose another --out")
        created_folder = not run_folder.exists()
        run_folder.mkdir(parents=True, exist_ok=True)
    lock = _RunLock(run_folder) if writes else None
    try:
        if lock is not None:
            lock.__enter__()
        with _StopRequest() as stop:
            result = _loop(model, module, optimizer, train_set, val_set, config, device=device,
                           autocast_dtype=autocast_dtype, rank=rank, world_size=world_size, stop=stop,
                           steps_per_epoch=steps_per_epoch, total_steps=total_steps, start_epoch=start_epoch,
                           start_step=start_step, loss_sum=loss_sum, loss_count=loss_count, history=history,
                           elapsed=elapsed, run_folder=run_folder if writes else None, on_epoch=on_epoch)
        if world_size > 1:
            result["replica_max_difference"] = _replica_difference(module)
        if writes:
            final = run_folder / "final.pth"
            save_checkpoint(final, module, classes=list(train_set.class_names), config=asdict(config),
                            preprocess="cifar" if train_set.preset == "cifar" else "torchvision",
                            metrics=result)
            result["checkpoint"] = str(final)
    except BaseException:
        if created_folder:
            _remove_if_unused(run_folder, lock)
        raise
    finally:
        if lock is not None and lock.handle is not None and not lock.handle.closed:
            lock.__exit__(None, None, None)
    result.update(precision="bf16" if autocast_dtype is not None else "fp32", world_size=world_size, threads=threads,
                  device=device.type)
    # Cached sets list unreadable files when decoding; streamed ones as the workers meet them.
    skipped = sorted(set(train_set.skipped) | set(result.pop("skipped_while_streaming")))
    result.update(skipped_images=len(skipped), skipped=skipped[:20])
    return result


def _loop(model, module, optimizer, train_set, val_set, config, *, device, autocast_dtype, rank, world_size, stop,
          steps_per_epoch, total_steps, start_epoch, start_step, loss_sum, loss_count, history, elapsed,
          run_folder, on_epoch) -> dict:
    """The training loop proper: epochs of steps, an evaluation and a checkpoint after each epoch."""
    show = config.show_progress and rank == 0
    skipped: set[str] = set()
    for epoch in range(start_epoch, config.epochs):
        model.train()
        epoch_start = time.perf_counter()
        running = torch.zeros(2, dtype=torch.float64)
        crop_side = training_crop_side(epoch, config)
        batches = epoch_batches(train_set, batch_size=config.batch_size, epoch=epoch, seed=config.seed, train=True,
                                rank=rank, world_size=world_size,
                                start_step=start_step if epoch == start_epoch else 0, workers=config.workers,
                                crop_size=crop_side)
        first_step = start_step if epoch == start_epoch else 0
        bar = progress(batches, total=steps_per_epoch - first_step, desc=f"epoch {epoch + 1}/{config.epochs}",
                       enabled=show, unit="step")
        step, images_seen, lr = first_step, 0, learning_rate(epoch * steps_per_epoch + first_step, total_steps, config)
        for step, batch in enumerate(bar, start=first_step):
            lr = learning_rate(epoch * steps_per_epoch + step, total_steps, config)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            generator = None if batch.augmented else torch.Generator().manual_seed(batch.augment_seed)
            inputs = to_model_input(batch.pixels, train_set.preset, device, image_size=train_set.image_size,
                                    generator=generator, share=batch.share, global_size=batch.global_size,
                                    channels_last=config.channels_last, crop_size=crop_side)
            labels = batch.labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
                logits = model(inputs)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(module.parameters(), config.clip_grad_norm)
            optimizer.step()
            running[0] += loss.detach().double().cpu() * len(labels)
            running[1] += len(labels)
            images_seen += batch.global_size
            skipped.update(batch.skipped)
            if batch.skipped and config.on_bad_image == "fail":
                raise ValueError(f"{batch.skipped[0]}: not a readable image (--on-bad-image fail)")
            if show and step % 10 == 0:
                seconds = time.perf_counter() - epoch_start
                bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{images_seen / max(seconds, 1e-9):.0f}", lr=f"{lr:.3g}")
            if _stop_requested(stop, world_size):
                running_sum, running_count = _reduced(running, world_size)
                rng_states = _rng_states(device, world_size)
                if run_folder is not None:
                    _save_training_state(run_folder / "last.pth", module, optimizer, config, epoch=epoch,
                                         step=step + 1, loss_sum=loss_sum + running_sum,
                                         loss_count=loss_count + running_count, history=history,
                                         class_names=train_set.class_names,
                                         elapsed=elapsed + time.perf_counter() - epoch_start, rng_states=rng_states)
                    print(f"squeezenet train: stopped by signal {stop.signal} at epoch {epoch + 1} step {step + 1}; "
                          f"saved {run_folder / 'last.pth'}; continue with --resume", file=sys.stderr)
                raise KeyboardInterrupt
        train_seconds = time.perf_counter() - epoch_start
        running_sum, running_count = _reduced(running, world_size)
        loss_sum, loss_count = loss_sum + running_sum, loss_count + running_count
        record = {"epoch": epoch + 1, "loss": loss_sum / max(loss_count, 1), "lr": lr,
                  "images_per_second": images_seen / max(train_seconds, 1e-9)}
        if crop_side is not None:
            record["crop_side"] = crop_side
        if val_set is not None and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            accuracy = evaluate_accuracy(model, val_set, batch_size=config.eval_batch_size, device=device,
                                         autocast_dtype=autocast_dtype, channels_last=config.channels_last,
                                         flip=config.eval_flip, shift=config.eval_shift)
            record.update(top1=accuracy["top1"], top5=accuracy["top5"])
            if show:
                # The bar of the epoch is gone (leave=False); this line stays, on stderr so --json stdout stays clean.
                print(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.3f}, validation top-1 "
                      f"{100 * accuracy['top1']:.1f}%, top-5 {100 * accuracy['top5']:.1f}%, "
                      f"{record['images_per_second']:.0f} images/s", file=sys.stderr, flush=True)
        elapsed += time.perf_counter() - epoch_start
        record["seconds"] = elapsed
        history.append(record)
        loss_sum, loss_count = 0.0, 0
        rng_states = _rng_states(device, world_size)
        if run_folder is not None:
            _save_training_state(run_folder / "last.pth", module, optimizer, config, epoch=epoch + 1, step=0,
                                 loss_sum=0.0, loss_count=0, history=history, class_names=train_set.class_names,
                                 elapsed=elapsed, rng_states=rng_states)
            # Rewritten whole from the checkpoint's history, so a crash never leaves it out of step.
            log = "".join(json.dumps(line) + "\n" for line in history)
            atomic_write_bytes(run_folder / "metrics.jsonl", log.encode())
        if on_epoch is not None:
            on_epoch(record, module)
    last = history[-1] if history else {}
    return {"epochs": config.epochs, "loss": last.get("loss"), "top1": last.get("top1"), "top5": last.get("top5"),
            "images_per_second": sum(r["images_per_second"] for r in history) / max(len(history), 1),
            "seconds": elapsed, "history": history, "skipped_while_streaming": sorted(skipped)}


def _stop_requested(stop: _StopRequest, world_size: int) -> bool:
    """Every process must stop at the same step, so under DDP one signalled process stops them all."""
    if world_size == 1:
        return stop.signal is not None
    flag = torch.tensor([1.0 if stop.signal is not None else 0.0])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if flag.item() and stop.signal is None:
        stop.signal = signal.SIGTERM
    return bool(flag.item())


def _reduced(running: torch.Tensor, world_size: int) -> tuple[float, int]:
    if world_size > 1:
        running = running.clone()
        dist.all_reduce(running)
    return float(running[0]), int(running[1])


def build_training_model(config: TrainConfig, num_classes: int, **arch_options) -> nn.Module:
    """A freshly initialised ``config.arch`` for ``num_classes`` (with the ``dropout`` override);
    ``arch_options`` go to the architecture's builder (e.g. Section 5 metaparameters).

    Deviation from the paper's initialisation: SqueezeNet's class scores pass a ReLU (conv10 ->
    ReLU -> global average pool), and a class whose conv10 output turns negative for every input
    gets no gradient again: it is never predicted. With the 0-initialised bias this killed 2 of 10
    CIFAR-10 classes in a 3-epoch run and 5 of 10 in another (measured). conv10's bias therefore
    starts at 1, inside the ReLU's active range, so the first large steps cannot close a class.
    """
    spec = build_model(config.arch, num_classes=num_classes, **arch_options).spec.to_dict()
    if config.dropout is not None:
        spec["dropout"] = config.dropout
    torch.manual_seed(config.seed)
    return training_model_from_spec(spec)


def training_model_from_spec(spec: dict) -> nn.Module:
    """A freshly initialised model for ``spec`` (seeded by the caller), with SqueezeNet's conv10
    bias at 1 as explained in ``build_training_model``."""
    model = model_from_spec(spec)
    if isinstance(model, SqueezeNet):
        final_conv = model.classifier[1]
        assert isinstance(final_conv, nn.Conv2d) and isinstance(model.classifier[2], nn.ReLU)
        nn.init.constant_(final_conv.bias, 1.0)
    return model


def train(config: TrainConfig) -> dict:
    """Build ``config.arch`` for the classes found in ``config.data``, train it, return the metrics."""
    from squeezenet.models import ARCHITECTURES

    if config.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.arch!r}; choose from {', '.join(ARCHITECTURES)}")
    _set_threads(config)
    probe = build_model(config.arch)
    train_set, val_set = load_datasets(config, probe.spec.input_size)
    model = build_training_model(config, train_set.num_classes)
    try:
        return train_model(model, train_set, val_set, config)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
