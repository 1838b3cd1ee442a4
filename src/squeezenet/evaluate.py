"""Top-1/top-5 accuracy of a model on labelled photos, and top-k prediction for single images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from squeezenet.data import LabelledImages, PhotoDataset, collate_skipping, imagenet_classes, load_rgb, preprocess
from squeezenet.progress import progress
from squeezenet.test_time_augmentation import augmented_logits

__all__ = ["count_correct", "evaluate", "match_classes", "predict", "Prediction"]

_NAMES_SHOWN = 8  # unknown class names an error message lists before "..."


def match_classes(model: nn.Module, images: LabelledImages) -> LabelledImages:
    """``images`` relabelled in the model's output indices, matched by class name.

    A folder's own labels number its class folders by sorted position, which is the model's
    numbering only when the folder holds exactly the model's classes: a subset (airplane, cat, dog
    of CIFAR-10) would be scored against the wrong outputs. So the folder's class names are looked
    up in the model's (``model.class_names``; ImageNet wnids for a 1000-class model without names).
    Folders labelled by ImageNet wnid (flat or as class folders) are kept as they are for a
    1000-class model. A model without names and a folder with as many classes as the model keep the
    position numbering. Raises ValueError naming the folder's classes the model does not have."""
    spec = getattr(model, "spec", None)
    if spec is None:
        return images
    num_classes = spec.num_classes
    imagenet_labelled = _imagenet_labelled(images)
    if imagenet_labelled and num_classes == 1000:
        return images
    names = getattr(model, "class_names", None)
    own_names = list(names) if names is not None and len(names) == num_classes else None
    if own_names is None and not imagenet_labelled and len(images.class_names) == num_classes:
        return images
    model_names = own_names or ([c.wnid for c in imagenet_classes()] if num_classes == 1000 else None)
    if model_names is None:
        raise ValueError(f"the folder has {len(images.class_names)} classes and the model {num_classes} without "
                         "names: cannot tell which of its outputs each class is (give a folder of all its classes)")
    index = {}
    for position, name in enumerate(model_names):
        index.setdefault(name, position)
    relabel, unknown = {}, []
    for label in sorted(set(images.labels)):
        keys = _class_keys(images, label, imagenet_labelled)
        found = next((index[key] for key in keys if key in index), None)
        if found is None:
            unknown.append(keys[0])
        relabel[label] = found
    if unknown:
        shown = ", ".join(unknown[:_NAMES_SHOWN]) + (f", ... ({len(unknown)} in all)" if len(unknown) > _NAMES_SHOWN else "")
        raise ValueError(f"the folder's classes {shown} are not among the model's {num_classes} classes")
    return LabelledImages(images.paths, tuple(relabel[label] for label in images.labels), tuple(model_names))


def _imagenet_labelled(images: LabelledImages) -> bool:
    """Whether the labels are ImageNet indices (a flat ``<wnid>_name`` folder, or class folders named by wnid)."""
    return len(images.class_names) == 1000 and tuple(images.class_names) == tuple(c.name for c in imagenet_classes())


def _class_keys(images: LabelledImages, label: int, imagenet_labelled: bool) -> tuple[str, ...]:
    """The names a class may go by in a model's list: its folder name, or an ImageNet class's name and wnid."""
    if imagenet_labelled:
        imagenet_class = imagenet_classes()[label]
        return imagenet_class.name, imagenet_class.wnid
    return (images.class_names[label],)


@torch.no_grad()
def count_correct(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    flip: bool = False,
    shift: int = 0,
    autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The one scorer of `evaluate` and the trainer's validation: ``[top-1 hits, top-5 hits, images]``
    (int64, on the labels' device) of ``model`` in eval mode over ``batches`` of preprocessed
    ``(inputs, labels)``. The model's training mode is restored afterwards.

    ``flip``, ``shift``: test-time augmentation, each image's logits plus its left-right mirror image's
    and those of copies shifted by ``shift`` pixels (see ``test_time_augmentation``).
    ``autocast_dtype``: run the model under autocast to this type (None: as it is)."""
    was_training = model.training
    model.eval()
    counts = None
    for inputs, labels in batches:
        with torch.autocast(inputs.device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            logits = augmented_logits(model, inputs, flip=flip, shift=shift)
        best = logits.topk(min(5, logits.shape[1]), dim=1).indices
        found = torch.stack([(best[:, 0] == labels).sum(), (best == labels[:, None]).any(dim=1).sum(),
                             torch.tensor(len(labels), device=labels.device)])
        counts = found if counts is None else counts + found
    model.train(was_training)
    return counts if counts is not None else torch.zeros(3, dtype=torch.int64)


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

    ``flip``, ``shift``: test-time augmentation, as the trainer's ``--eval-flip``/``--eval-shift``
    validation scores them (both call `count_correct`).

    The folder's classes are matched to the model's outputs by name (see `match_classes`)."""
    images = match_classes(model, images)
    num_classes = model.spec.num_classes if hasattr(model, "spec") else None
    if num_classes is not None and max(images.labels) >= num_classes:
        raise ValueError(f"labels go up to {max(images.labels)} but the model has {num_classes} classes")
    transform = preprocess(preset, input_size=getattr(getattr(model, "spec", None), "input_size", None))
    dataset = PhotoDataset(images, transform, on_bad_image=on_bad_image)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_skipping)
    model.eval()
    skipped = 0
    start = time.perf_counter()
    # The bar counts images, as the result does, not batches.
    with progress(None, total=len(dataset), desc="evaluate", unit="image", enabled=show_progress) as bar:

        def readable_batches():
            nonlocal skipped
            for batch, labels, _, bad in loader:
                skipped += bad
                bar.update(bad)
                if batch is not None:
                    yield batch, labels
                    bar.update(len(labels))

        top1, top5, seen = count_correct(model, readable_batches(), flip=flip, shift=shift).tolist()
    seconds = time.perf_counter() - start
    if seen == 0:
        raise ValueError("no readable images to evaluate")
    return {"top1": top1 / seen, "top5": top5 / seen, "images": seen, "skipped": skipped, "seconds": round(seconds, 3)}


@dataclass(frozen=True)
class Prediction:
    image: str
    classes: list[tuple[int, str, float]]  # (index, name, probability), most likely first
    error: str | None = None  # why the image was skipped (then ``classes`` is empty)


@torch.no_grad()
def predict(model: nn.Module, paths: list[str | Path], preset: str, class_names: list[str], *, k: int = 5,
            on_bad_image: str = "fail") -> list[Prediction]:
    """The ``k`` most likely classes of each image, in the order given.

    An unreadable or missing image raises with ``on_bad_image="fail"``; with ``"skip"`` it gets a
    Prediction with its ``error`` and no classes, and the others are still predicted (ValueError when
    none is readable)."""
    if on_bad_image not in ("skip", "fail"):
        raise ValueError(f"on_bad_image must be 'skip' or 'fail', got {on_bad_image!r}")
    transform = preprocess(preset, input_size=getattr(getattr(model, "spec", None), "input_size", None))
    tensors, errors = {}, {}
    for position, path in enumerate(paths):
        try:
            tensors[position] = transform(load_rgb(path))
        except (ValueError, FileNotFoundError) as error:
            if on_bad_image == "fail":
                raise
            errors[position] = str(error)
    if not tensors:
        first = next(iter(errors.values()), "none given")
        raise ValueError(f"no readable image among the {len(paths)} given: {first}")
    model.eval()
    probabilities = model(torch.stack(list(tensors.values()))).softmax(dim=1)
    top = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    found = {
        position: [(int(i), class_names[int(i)], float(p)) for p, i in zip(values, indices)]
        for position, values, indices in zip(tensors, top.values, top.indices)
    }
    return [Prediction(str(path), found.get(position, []), errors.get(position)) for position, path in enumerate(paths)]
