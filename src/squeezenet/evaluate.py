"""Top-1/top-5 accuracy of a model on labelled photos, and top-k prediction for single images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from squeezenet.data import LabelledImages, PhotoDataset, collate_skipping, load_rgb, preprocess
from squeezenet.progress import progress
from squeezenet.test_time_augmentation import augmented_logits

__all__ = ["evaluate", "predict", "Prediction"]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: LabelledImages,
    preset: str,
    *,
    batch_size: int = 32,
    on_bad_image: str = "skip",
    show_progress: bool = True,
    flip: bool = False,
    shift: int = 0,
) -> dict:
    """``{"top1", "top5", "images", "skipped", "seconds"}`` with accuracies as fractions in 0..1.

    ``flip``, ``shift``: test-time augmentation, each image's logits plus its left-right mirror image's
    and those of copies shifted by ``shift`` pixels (as the trainer's ``--eval-flip``/``--eval-shift``
    validation scores them; see ``test_time_augmentation``)."""
    num_classes = model.spec.num_classes if hasattr(model, "spec") else None
    if num_classes is not None and max(images.labels) >= num_classes:
        raise ValueError(f"labels go up to {max(images.labels)} but the model has {num_classes} classes")
    transform = preprocess(preset, input_size=getattr(getattr(model, "spec", None), "input_size", None))
    dataset = PhotoDataset(images, transform, on_bad_image=on_bad_image)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_skipping)
    model.eval()
    top1 = top5 = seen = skipped = 0
    start = time.perf_counter()
    for batch, labels, _, bad in progress(loader, total=len(loader), desc="evaluate", enabled=show_progress):
        skipped += bad
        if batch is None:
            continue
        logits = augmented_logits(model, batch, flip=flip, shift=shift)
        best = logits.topk(min(5, logits.shape[1]), dim=1).indices
        top1 += int((best[:, 0] == labels).sum())
        top5 += int((best == labels[:, None]).any(dim=1).sum())
        seen += len(labels)
    seconds = time.perf_counter() - start
    if seen == 0:
        raise ValueError("no readable images to evaluate")
    return {"top1": top1 / seen, "top5": top5 / seen, "images": seen, "skipped": skipped, "seconds": round(seconds, 3)}


@dataclass(frozen=True)
class Prediction:
    image: str
    classes: list[tuple[int, str, float]]  # (index, name, probability), most likely first


@torch.no_grad()
def predict(model: nn.Module, paths: list[str | Path], preset: str, class_names: list[str], *, k: int = 5) -> list[Prediction]:
    transform = preprocess(preset, input_size=getattr(getattr(model, "spec", None), "input_size", None))
    batch = torch.stack([transform(load_rgb(path)) for path in paths])
    model.eval()
    probabilities = model(batch).softmax(dim=1)
    top = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    return [
        Prediction(str(path), [(int(i), class_names[int(i)], float(p)) for p, i in zip(values, indices)])
        for path, values, indices in zip(paths, top.values, top.indices)
    ]
