"""The data splits and the train / retrain / evaluate calls every reproduction shares.

Accuracy is measured on the validation split (the last ``val_split`` images of every class of the
training folder); the CIFAR-10 test split is never read. Training goes through the project's
trainer (``squeezenet.train.train_model``), so masks and tied codebooks held by parametrizations
stay in force while it retrains, and an interrupted run resumes from its folder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from squeezenet.train import config_for_preset, evaluate_accuracy, train_model
from squeezenet.training_data import Batching, ImageSet, InputPipeline, epoch_batches, load_image_folder, to_model_input

__all__ = ["SQUEEZENET_RECIPE", "Solver", "Splits", "load_splits", "check_data_arguments", "per_class", "fit", "accuracy",
           "data_settings", "calibration_inputs"]


# Recorded in the settings of every SqueezeNet training (so its cache key follows the recipe).
SQUEEZENET_RECIPE = "conv10 bias 1, classifier lr x0.1 (squeezenet.train.build_training_model, fast preset)"


@dataclass
class Splits:
    train: ImageSet  # baseline training images
    val: ImageSet  # validation: accuracy of every row
    retrain: ImageSet  # images for every retraining
    sweep: ImageSet  # images for the design-space and bypass trainings
    root: Path
    val_split: int


def per_class(images: ImageSet, count: int | None) -> ImageSet:
    """The first ``count`` images of every class (in file order); all of them for None."""
    if count is None:
        return images
    if count < 1:
        raise ValueError(f"images per class must be at least 1, got {count}")
    labels = images.labels.numpy()
    keep = np.sort(np.concatenate([np.flatnonzero(labels == label)[:count] for label in np.unique(labels)]))
    return replace(
        images,
        paths=[images.paths[i] for i in keep],
        labels=images.labels[torch.from_numpy(keep)],
        pixel_rows=None if images.pixel_rows is None else images.pixel_rows[keep],
    )


def check_data_arguments(data: str | Path, val_split: int) -> Path:
    """The data folder as a Path, after the checks that need no image read."""
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    if val_split < 1:
        raise ValueError(f"the validation split must hold at least 1 image per class, got {val_split}")
    return root


def load_splits(data: str | Path, schedule, *, val_split: int, show_progress: bool,
                cache_dir: str | Path | None = None) -> Splits:
    """Read the ImageFolder at ``data`` once and cut the schedule's subsets. ``cache_dir``: the
    decoded-image cache, as ``squeezenet train --cache-dir`` (None: its default folder)."""
    root = check_data_arguments(data, val_split)
    train, val = load_image_folder(root, preset="cifar", image_size=32, val_split=val_split, cache_dir=cache_dir,
                                   show_progress=show_progress)
    return Splits(
        train=per_class(train, schedule.train_per_class),
        val=per_class(val, schedule.val_per_class),
        retrain=per_class(train, schedule.retrain_per_class),
        sweep=per_class(train, schedule.sweep_train_per_class),
        root=root,
        val_split=val_split,
    )


def data_settings(splits: Splits) -> dict:
    """What identifies the data in a run's settings: the folder and the sizes of its splits."""
    return {"data": str(splits.root.resolve()), "val_split": splits.val_split, "train_images": len(splits.train),
            "val_images": len(splits.val), "retrain_images": len(splits.retrain), "sweep_images": len(splits.sweep)}


@dataclass(frozen=True)
class Solver:
    """What one reproduction training sets of the trainer's ``fast`` recipe (one-cycle SGD); the rest
    is the preset's. Named after Caffe's solver.prototxt, which holds the same settings."""

    epochs: int
    lr: float  # one-cycle peak learning rate
    batch_size: int  # at most the number of training images
    seed: int = 0  # batch order and augmentation
    classifier_lr_scale: float | None = None  # learning-rate factor of the last layer; None: the preset's


def fit(model: nn.Module, images: ImageSet, solver: Solver, *, folder: Path, val: ImageSet | None = None,
        show_progress: bool = False, resumable: bool = True) -> dict:
    """Train ``model`` in place on ``images`` with ``solver``; ``val``: validation after the last epoch.

    ``resumable``: the trainer checkpoints every epoch into ``folder/train`` and an interrupted run
    continues from there."""
    run_folder = folder / "train"
    config = config_for_preset(
        "fast", arch=type(model).__name__, epochs=solver.epochs, lr=solver.lr,
        batch_size=min(solver.batch_size, len(images)), out=str(run_folder) if resumable else None,
        resume=resumable and (run_folder / "last.pth").exists(), show_progress=show_progress, device="cpu",
        seed=solver.seed, eval_batch_size=500, classifier_lr_scale=solver.classifier_lr_scale)
    result = train_model(model, images, val, config)
    result.pop("skipped", None)
    return {key: result[key] for key in ("epochs", "loss", "top1", "top5", "images_per_second", "seconds", "history")}


def accuracy(model: nn.Module, val: ImageSet) -> dict:
    """Top-1 / top-5 (fractions) in float32, the same for every row."""
    model = model.to(memory_format=torch.contiguous_format).eval()
    result = evaluate_accuracy(model, val, batch_size=500, device="cpu", autocast_dtype=None, channels_last=False)
    return {"top1": result["top1"], "top5": result["top5"], "val_images": result["images"]}


def calibration_inputs(images: ImageSet, count: int = 512) -> torch.Tensor:
    """The first ``count`` images (file order, no augmentation) as a model input batch."""
    batch = next(iter(epoch_batches(images, Batching(min(count, len(images))), epoch=0)))
    return to_model_input(batch.pixels, InputPipeline(images.preset, images.image_size, channels_last=False))
