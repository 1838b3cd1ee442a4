"""A few preprocessed real photos, as NumPy arrays: int8 calibration and parity checks of the exports."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import numpy as np

from squeezenet.data import find_images, load_rgb, preprocess

__all__ = ["photo_batch", "photo_paths"]


def photo_paths(folder: str | os.PathLike, count: int, *, offset: int = 0, exclude: Collection[Path] = ()
                ) -> list[tuple[Path, int]]:
    """(path, label) of ``count`` photos spread evenly over the folder's sorted list (less those in
    ``exclude``), starting ``offset`` places in: many classes rather than the first few."""
    if count < 1:
        raise ValueError(f"need at least one photo, asked for {count}")
    images = find_images(folder)
    excluded = set(exclude)
    candidates = [(path, label) for path, label in zip(images.paths, images.labels) if path not in excluded]
    if not candidates:
        raise ValueError(f"no photos left in {folder}: it has {len(images.paths)}, all excluded (used to calibrate); "
                         f"{count} more were asked for")
    step = max(1, len(candidates) // count)
    return [candidates[(offset + step * index) % len(candidates)] for index in range(min(count, len(candidates)))]


def photo_batch(folder: str | os.PathLike, preset: str, input_size: int, count: int, *, offset: int = 0,
                exclude: Collection[Path] = (), on_bad_image: str = "skip") -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [n, C, H, W], labels int64 [n]) of the photos `photo_paths` picks, through
    the ``preset`` preprocessing. Unreadable photos are skipped (n is then smaller than asked:
    callers count them), or raise ValueError with ``on_bad_image="fail"``."""
    if on_bad_image not in ("skip", "fail"):
        raise ValueError(f"on_bad_image must be 'skip' or 'fail', got {on_bad_image!r}")
    transform = preprocess(preset, input_size=input_size)
    tensors, labels = [], []
    picked = photo_paths(folder, count, offset=offset, exclude=exclude)
    for path, label in picked:
        try:
            tensors.append(transform(load_rgb(path)).numpy())
        except ValueError:
            if on_bad_image == "fail":
                raise
            continue
        labels.append(label)
    if not tensors:
        raise ValueError(f"none of the {len(picked)} photos picked from {folder} (of {count} asked for) is readable")
    return np.stack(tensors).astype(np.float32), np.asarray(labels, dtype=np.int64)
