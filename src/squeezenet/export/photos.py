"""A few preprocessed real photos, as NumPy arrays: int8 calibration and parity checks of the exports."""

from __future__ import annotations

import os

import numpy as np

from squeezenet.data import find_images, load_rgb, preprocess

__all__ = ["photo_batch"]


def photo_batch(folder: str | os.PathLike, preset: str, input_size: int, count: int, *, offset: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [n, C, H, W], labels int64 [n]) of ``count`` photos spread evenly over the
    folder's sorted list, starting ``offset`` places in (so two calls with different offsets pick
    disjoint photos when count * 2 <= folder size). Unreadable photos are skipped."""
    if count < 1:
        raise ValueError(f"need at least one photo, asked for {count}")
    images = find_images(folder)
    total = len(images.paths)
    step = max(1, total // count)
    picks = [(offset + step * index) % total for index in range(min(count, total))]
    transform = preprocess(preset, input_size=input_size)
    tensors, labels = [], []
    for index in picks:
        try:
            tensors.append(transform(load_rgb(images.paths[index])).numpy())
        except ValueError:
            continue
        labels.append(images.labels[index])
    if not tensors:
        raise ValueError(f"no readable photos in {folder}")
    return np.stack(tensors).astype(np.float32), np.asarray(labels, dtype=np.int64)
