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
The settings (``TrainConfig``, ``TRAINING_RECIPES``) live in ``squeezenet.training_config``; process
groups, signals, the folder lock and RNG state in ``squeezenet.train_runtime``;
the resume state in ``squeezenet.training_state``; the scorer in ``squeezenet.evaluate``.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from squeezenet.evaluate import count_correct
from squeezenet.models import ARCHITECTURES, SqueezeNet, build_model, model_from_spec, weight_layers
from squeezenet.progress import progress
from squeezenet.safe_io import atomic_write_bytes
from squeezenet.train_runtime import (RunLock, StopRequest, all_reduced, autocast_dtype, choose_device,
                                      distributed_setup, remove_if_unused, replica_difference, restore_rng_state,
                                      rng_states, set_threads, stop_requested)
from squeezenet.training_config import TRAINING_RECIPES, TrainConfig, config_for_preset
from squeezenet.training_data import Batching, ImageSet, InputPipeline, epoch_batches, load_image_folder, to_model_input
from squeezenet.training_state import TrainingState, load_resume_checkpoint
from squeezenet.weights import save_checkpoint

__all__ = ["TRAINING_RECIPES", "TrainConfig", "build_training_model", "config_for_preset", "evaluate_accuracy",
           "learning_rate", "load_datasets", "train", "train_model", "training_autocast_dtype",
           "training_crop_side", "training_model_from_spec"]


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """The learning rate of optimizer step ``step`` (0-based) out of ``total_steps``.

    poly (the paper, power 1): lr * (1 - step / total_steps).
    one_cycle: 1) a linear rise from lr/10 to lr over the warmup fraction, 2) a linear fall to 0.
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


def training_autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast type of ``config.precision`` on ``device`` (see ``train_runtime.autocast_dtype``)."""
    return autocast_dtype(config.precision, device)


def load_datasets(config: TrainConfig, input_size: int) -> tuple[ImageSet, ImageSet | None]:
    """The training set and the validation set (``val_data`` folder, ``val_split``, or none)."""
    if not config.data:
        raise ValueError("no training data folder given (--data DIR)")
    preset = config.augment if config.augment != "auto" else ("cifar" if input_size <= 64 else "imagenet")
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


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD over ``model.parameters()`` (parametrized weights train their ``original`` tensors).

    Groups: (decayed or not) x (last weight layer or not); each group's ``lr_scale`` multiplies the
    scheduled learning rate.
    """
    classifier = {id(p) for p in weight_layers(model)[-1][1].parameters()}
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


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def evaluate_accuracy(model: nn.Module, images: ImageSet, *, batch_size: int = 500,
                      device: torch.device | str | None = None, autocast_dtype: torch.dtype | None = None,
                      channels_last: bool = True, flip: bool = False, shift: int = 0) -> dict:
    """Top-1 and top-5 accuracy (fractions) of ``model`` on an ImageSet, centre crops, scored by
    ``squeezenet.evaluate.count_correct`` (``flip``/``shift``: its test-time augmentation).
    Under DDP every process scores its share of the images and the counts are summed."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    pipeline = InputPipeline(images.preset, images.image_size, device, channels_last=channels_last)
    batching = Batching(batch_size, rank=rank, world_size=world_size)
    batches = ((to_model_input(batch.pixels, pipeline), batch.labels.to(device))
               for batch in epoch_batches(images, batching, epoch=0))
    counts = all_reduced(count_correct(model, batches, flip=flip, shift=shift, autocast_dtype=autocast_dtype)
                         .to(device), world_size)
    top1, top5, seen = counts.tolist()
    if seen == 0:
        raise ValueError("no images to evaluate")
    return {"top1": top1 / seen, "top5": top5 / seen, "images": seen}


@dataclass(frozen=True)
class _Run:
    """One `train_model` call once its processes, device, model and optimizer are set up: what the
    epoch, validation and checkpoint helpers below share (nanoGPT keeps these as module globals)."""

    config: TrainConfig
    model: nn.Module  # what the steps call: under torchrun the DistributedDataParallel wrapper of ``module``
    module: nn.Module  # the model being trained; checkpoints hold its state_dict
    optimizer: torch.optim.SGD
    device: torch.device
    autocast_dtype: torch.dtype | None
    rank: int
    world_size: int
    threads: int
    folder: Path | None  # the run folder; None: no files

    @property
    def writes(self) -> bool:
        return self.folder is not None and self.rank == 0  # only rank 0 writes

    @property
    def shows_progress(self) -> bool:
        return self.config.show_progress and self.rank == 0


def _start_run(model: nn.Module, config: TrainConfig) -> _Run:
    """Join the processes (under torchrun), choose the device, move the model there (wrapped in DDP
    when there are several processes), build its optimizer and seed this process."""
    rank, world_size, local_rank = distributed_setup(config.device)
    if config.batch_size % world_size:
        raise ValueError(f"the global batch size {config.batch_size} does not split over {world_size} processes")
    threads = set_threads(config.threads)
    device = choose_device(config.device, local_rank)
    dtype = autocast_dtype(config.precision, device)
    model.to(device=device, memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)
    module = model
    if world_size > 1:
        if device.type == "cuda" and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            module = model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(module, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizer = _optimizer(module, config)
    torch.manual_seed(config.seed * 1000 + rank)  # dropout masks differ per process, as they should
    if device.type == "cuda":
        torch.cuda.manual_seed(config.seed * 1000 + rank)
    folder = Path(config.out) if config.out else None
    return _Run(config, model, module, optimizer, device, dtype, rank, world_size, threads, folder)


def _check_sizes(train_set: ImageSet, config: TrainConfig) -> None:
    """Refuse, before any work, what the first step or the first validation would fail on."""
    image_size = train_set.image_size
    if len(train_set) < config.batch_size:
        raise ValueError(f"the batch size {config.batch_size} is larger than the {len(train_set)} training images; "
                         f"pass --batch-size N (at most {len(train_set)})")
    if config.low_res_side is not None and config.low_res_side >= image_size:
        raise ValueError(f"the low-resolution side {config.low_res_side} must be smaller than the input size {image_size}")
    if config.eval_shift >= image_size:  # caught here, not at the first validation an epoch later
        raise ValueError(f"the evaluation shift of {config.eval_shift} pixels must be smaller than the input size "
                         f"{image_size}")


def _open_run_folder(run: _Run) -> tuple[TrainingState, bool]:
    """The state to start from (resumed from ``last.pth`` with ``config.resume``) and whether this call
    created the run folder. Every check comes before the folder is made, so a refused run leaves nothing."""
    if run.folder is None:
        return TrainingState(), False
    state = TrainingState()
    if run.folder.exists() and not run.folder.is_dir():
        raise ValueError(f"--out {run.folder} is a file; give a run folder")
    if run.config.resume:
        checkpoint = load_resume_checkpoint(run.folder, run.module, run.config)
        run.module.load_state_dict(checkpoint["model"])
        run.optimizer.load_state_dict(checkpoint["optimizer"])
        state = TrainingState.from_dict(checkpoint)
        restore_rng_state(state.rng_states, run.device, run.rank, run.world_size)
    elif (run.folder / "last.pth").exists() and run.rank == 0:
        raise ValueError(f"{run.folder} already holds a run; pass --resume to continue it or choose another --out")
    created = not run.folder.exists()
    run.folder.mkdir(parents=True, exist_ok=True)
    return state, created


def _step(run: _Run, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One optimizer step on a batch; returns its loss."""
    with _autocast(inputs.device, run.autocast_dtype):
        logits = run.model(inputs)
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=run.config.label_smoothing)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.config.clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(run.module.parameters(), run.config.clip_grad_norm)
    run.optimizer.step()
    return loss


def _train_epoch(run: _Run, train_set: ImageSet, epoch: int, state: TrainingState, stop: StopRequest,
                 skipped: set[str]) -> dict:
    """One pass over ``train_set`` from step ``state.step`` (not 0 only in a resumed epoch); unreadable
    streamed files are added to ``skipped``. Returns the epoch's record: the loss over all its images
    (every process, the resumed part included), the last learning rate, images/s.
    On SIGINT/SIGTERM the state is saved to ``last.pth`` and KeyboardInterrupt raised."""
    config = run.config
    run.model.train()
    epoch_start = time.perf_counter()
    steps_per_epoch = len(train_set) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    first_step, crop_side = state.step, training_crop_side(epoch, config)
    pipeline = InputPipeline(train_set.preset, train_set.image_size, run.device, channels_last=config.channels_last,
                             crop_size=crop_side)
    batching = Batching(config.batch_size, train=True, seed=config.seed, rank=run.rank, world_size=run.world_size,
                        workers=config.workers)
    batches = epoch_batches(train_set, batching, epoch=epoch, start_step=first_step, crop_size=crop_side)
    bar = progress(batches, total=steps_per_epoch - first_step, enabled=run.shows_progress, unit="step",
                   desc=f"epoch {epoch + 1}/{config.epochs}")
    running = torch.zeros(2, dtype=torch.float64)  # loss sum, images: this process, this epoch
    images_seen, lr = 0, learning_rate(epoch * steps_per_epoch + first_step, total_steps, config)
    for step, batch in enumerate(bar, start=first_step):
        lr = learning_rate(epoch * steps_per_epoch + step, total_steps, config)
        for group in run.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        # Batches augmented by DataLoader workers arrive ready; cached pixels are augmented here,
        # seeded per batch so every process augments its share as one process would the whole.
        generator = None if batch.augmented else torch.Generator().manual_seed(batch.augment_seed)
        inputs = to_model_input(batch.pixels, pipeline, generator=generator, share=batch.share,
                                global_size=batch.global_size)
        labels = batch.labels.to(run.device, non_blocking=True)
        loss = _step(run, inputs, labels)
        running[0] += loss.detach().double().cpu() * len(labels)
        running[1] += len(labels)
        images_seen += batch.global_size
        skipped.update(batch.skipped)
        if batch.skipped and config.on_bad_image == "fail":
            raise ValueError(f"{batch.skipped[0]}: not a readable image (--on-bad-image fail)")
        if run.shows_progress and step % 10 == 0:
            seconds = time.perf_counter() - epoch_start
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.3g}", img_s=f"{images_seen / max(seconds, 1e-9):.0f}")
        if stop_requested(stop, run.world_size):
            loss_sum, loss_count = all_reduced(running, run.world_size).tolist()
            state.stop_mid_epoch(step + 1, loss_sum, int(loss_count), time.perf_counter() - epoch_start,
                                 rng_states(run.device, run.world_size))
            if run.writes:
                _save_last(run, state, train_set.class_names)
                print(f"squeezenet train: stopped by signal {stop.signal} at epoch {epoch + 1} step {step + 1}; "
                      f"saved {run.folder / 'last.pth'}; continue with --resume", file=sys.stderr)
            raise KeyboardInterrupt
    # The epoch's loss over all its images and processes, a stopped session's part included.
    train_seconds = time.perf_counter() - epoch_start
    loss_sum, loss_count = all_reduced(running, run.world_size).tolist()
    loss_sum, loss_count = state.loss_sum + loss_sum, state.loss_count + int(loss_count)
    record = {"epoch": epoch + 1, "loss": loss_sum / max(loss_count, 1), "lr": lr,
              "images_per_second": images_seen / max(train_seconds, 1e-9)}
    if crop_side is not None:
        record["crop_side"] = crop_side
    return record


def _validation_due(epoch: int, config: TrainConfig) -> bool:
    """Validate after every ``eval_every``-th epoch and after the last one."""
    return (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs


def _validate(run: _Run, val_set: ImageSet, record: dict) -> None:
    """Add the validation top-1/top-5 to the epoch's ``record`` (and print its line when showing progress)."""
    config = run.config
    accuracy = evaluate_accuracy(run.model, val_set, batch_size=config.eval_batch_size, device=run.device,
                                 autocast_dtype=run.autocast_dtype, channels_last=config.channels_last,
                                 flip=config.eval_flip, shift=config.eval_shift)
    record.update(top1=accuracy["top1"], top5=accuracy["top5"])
    if run.shows_progress:  # the epoch's bar is gone (leave=False); on stderr so --json stdout stays clean
        print(f"epoch {record['epoch']}/{config.epochs}: loss {record['loss']:.3f}, validation top-1 "
              f"{100 * accuracy['top1']:.1f}%, top-5 {100 * accuracy['top5']:.1f}%, "
              f"{record['images_per_second']:.0f} images/s", file=sys.stderr, flush=True)


def _save_last(run: _Run, state: TrainingState, classes) -> None:
    """``last.pth``: the model, the optimizer and where the run stands, for ``--resume``."""
    save_checkpoint(run.folder / "last.pth", run.module, optimizer=run.optimizer.state_dict(),
                    config=asdict(run.config), classes=list(classes), **state.to_dict())


def _save_epoch(run: _Run, state: TrainingState, classes) -> None:
    """After an epoch: ``last.pth``, then ``metrics.jsonl`` rewritten whole from the checkpoint's
    history, so a crash never leaves the two out of step."""
    _save_last(run, state, classes)
    log = "".join(json.dumps(line) + "\n" for line in state.history)
    atomic_write_bytes(run.folder / "metrics.jsonl", log.encode())


def _result(run: _Run, state: TrainingState, skipped: set[str]) -> dict:
    """The run's result from its history: the last epoch's loss and accuracy, mean images/s, time,
    and how it ran (processes, precision, threads, device, unreadable images)."""
    history = state.history
    last = history[-1] if history else {}
    result = {"epochs": run.config.epochs, "loss": last.get("loss"), "top1": last.get("top1"),
              "top5": last.get("top5"), "seconds": state.elapsed, "history": history,
              "images_per_second": sum(r["images_per_second"] for r in history) / max(len(history), 1)}
    if run.world_size > 1:
        result["replica_max_difference"] = replica_difference(run.module)
    result.update(precision="bf16" if run.autocast_dtype is not None else "fp32", world_size=run.world_size,
                  threads=run.threads, device=run.device.type, skipped_images=len(skipped),
                  skipped=sorted(skipped)[:20])
    return result


def _save_final(run: _Run, train_set: ImageSet, result: dict) -> Path:
    """``final.pth``: the trained model with its classes, preprocessing, config and metrics."""
    final = run.folder / "final.pth"
    save_checkpoint(final, run.module, classes=list(train_set.class_names), config=asdict(run.config),
                    preprocess="cifar" if train_set.preset == "cifar" else "torchvision", metrics=dict(result))
    return final


def train_model(model: nn.Module, train_set: ImageSet, val_set: ImageSet | None, config: TrainConfig, *,
                on_epoch: Callable[[dict, nn.Module], None] | None = None) -> dict:
    """Train ``model`` in place and return the final metrics.

    The optimizer trains ``model.parameters()`` as they are, so masks or tied codebooks held by
    parametrizations stay in force. Under torchrun the model is wrapped in DistributedDataParallel
    here. With ``config.out`` set, the run folder is locked and checkpoints are written there.
    ``on_epoch(record, model)`` is called after every epoch with the metrics record.
    """
    _check_sizes(train_set, config)
    run = _start_run(model, config)
    state, created_folder = _open_run_folder(run)
    skipped = set(train_set.skipped)  # cached sets list unreadable files when decoding; streamed ones as met
    try:
        with RunLock(run.folder) if run.writes else nullcontext(), StopRequest() as stop:
            for epoch in range(state.epoch, config.epochs):
                epoch_start = time.perf_counter()
                record = _train_epoch(run, train_set, epoch, state, stop, skipped)
                if val_set is not None and _validation_due(epoch, config):
                    _validate(run, val_set, record)
                state.end_epoch(record, time.perf_counter() - epoch_start, rng_states(run.device, run.world_size))
                if run.writes:
                    _save_epoch(run, state, train_set.class_names)
                if on_epoch is not None:
                    on_epoch(record, run.module)

            result = _result(run, state, skipped)
            if run.writes:
                result["checkpoint"] = str(_save_final(run, train_set, result))
    except BaseException:
        if created_folder:
            remove_if_unused(run.folder)
        raise
    return result


def train(config: TrainConfig) -> dict:
    """Build ``config.arch`` for the classes found in ``config.data``, train it, return the metrics."""
    if config.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.arch!r}; choose from {', '.join(ARCHITECTURES)}")
    set_threads(config.threads)
    train_set, val_set = load_datasets(config, build_model(config.arch).spec.input_size)
    model = build_training_model(config, train_set.num_classes)
    try:
        return train_model(model, train_set, val_set, config)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
