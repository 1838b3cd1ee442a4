"""Unlabelled calibration photos for label-free compression (bit allocation, centroid distillation).

The photos are split by a fixed rule (``calibration_split``), warped as ``squeezenet.data``'s
preprocessing warps them (256 for a 227 Caffe crop, 256 for a 224 torchvision one) and kept as
uint8; ``to_input`` turns a batch of crops into the model's input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

__all__ = ["CalibrationImages", "calibration_split", "load_calibration_images", "input_transform", "PHOTO_SUFFIXES"]

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class CalibrationImages:
    images: torch.Tensor  # uint8 [N, 3, H, W], H and W at least crop_size
    to_input: Callable[[torch.Tensor], torch.Tensor]  # uint8 crops -> model input
    crop_size: int
    skipped: int = 0  # unreadable photos left out


def calibration_split(paths: list[Path] | tuple[Path, ...]) -> tuple[list[int], list[int]]:
    """Fixed rule: sort by file name; even positions calibrate, odd positions evaluate."""
    order = sorted(range(len(paths)), key=lambda index: Path(paths[index]).name)
    return order[0::2], order[1::2]


def load_calibration_images(folder: str | Path, preprocess: str, crop_size: int, *,
                            on_bad_image: str = "skip") -> CalibrationImages:
    """The calibration half (``calibration_split``) of the photos under ``folder``, warped for ``crop_size``."""
    paths = _photos(Path(folder))
    calibration, _ = calibration_split(paths)
    reference_crop = 227 if preprocess == "caffe" else 224
    to_input = input_transform(preprocess)
    images, skipped = _warped([paths[index] for index in calibration], crop_size * 256 // reference_crop, on_bad_image)
    return CalibrationImages(images, to_input, crop_size, skipped)


def input_transform(preprocess: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 RGB crops -> model input, for the given preprocessing."""
    from squeezenet.data import CAFFE_MEAN_BGR

    if preprocess == "caffe":
        mean = torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float32).reshape(1, 3, 1, 1)
        return lambda crops: crops.flip(-3).to(torch.float32) - mean
    if preprocess == "torchvision":
        mean = torch.tensor((0.485, 0.456, 0.406)).reshape(1, 3, 1, 1)
        std = torch.tensor((0.229, 0.224, 0.225)).reshape(1, 3, 1, 1)
        return lambda crops: (crops.to(torch.float32) / 255 - mean) / std
    raise ValueError(f"calibration preprocessing {preprocess!r} is not supported here")


def _photos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if len(paths) < 2:
        raise ValueError(f"{folder} holds {len(paths)} photos; calibration needs at least 2")
    return paths


def _warped(paths: list[Path], size: int, on_bad_image: str = "skip") -> tuple[torch.Tensor, int]:
    """(uint8 images, number of unreadable photos skipped); ``on_bad_image="fail"`` raises at the first."""
    from torchvision.transforms import v2

    from squeezenet.data import load_rgb

    transform = v2.Compose([v2.Resize((size, size)), v2.ToImage()])
    images = []
    for path in paths:
        try:
            images.append(transform(load_rgb(path)))
        except ValueError:
            if on_bad_image == "fail":
                raise
    if len(images) < 2:
        raise ValueError(f"only {len(images)} of {len(paths)} calibration photos are readable; need at least 2")
    return torch.stack(images), len(paths) - len(images)
