"""Training input: an ImageFolder read once, augmented in batches, fast enough never to starve the model.

Two paths, chosen by size:
- small data sets (CIFAR-10, a few thousand photos) are decoded ONCE into a uint8 array cached on
  disk (a numpy ``.npy`` memory map keyed by the folder, its file list and the image side); every
  epoch then augments whole batches of uint8 tensors at once, with no per-image Python work;
- large data sets (ImageNet) are decoded per epoch by DataLoader workers with torchvision
  transforms v2.

Both paths give uint8 NCHW batches (`epoch_batches`, cut as `Batching` says); `to_model_input` turns
them into normalised float tensors on the training device (as `InputPipeline` says). Augmentation randomness is a pure function of (seed, epoch, step), drawn for
the whole global batch, so a resumed run and a run split over N DDP processes see the same images.

Presets: ``imagenet`` (RandomResizedCrop + horizontal flip; evaluation resize + centre crop, ImageNet
mean/std) and ``cifar`` (pad 4 + random crop + flip; CIFAR-10 mean/std), matching the evaluation
presets ``torchvision`` and ``cifar`` of `squeezenet.data.preprocess`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2

from squeezenet.data import find_images, load_rgb
from squeezenet.preprocess_numpy import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD
from squeezenet.progress import progress
from squeezenet.safe_io import atomic_write, atomic_write_bytes

__all__ = [
    "AUGMENTATIONS",
    "Batch",
    "Batching",
    "ImageSet",
    "InputPipeline",
    "augment_seed",
    "batch_order",
    "epoch_batches",
    "load_image_folder",
    "to_model_input",
]

AUGMENTATIONS = ("imagenet", "cifar")
# Data sets whose decoded pixels fit under this are cached as one uint8 array; bigger ones stream.
DEFAULT_CACHE_LIMIT_BYTES = 4 << 30
_CACHE_FORMAT = 1


@dataclass
class ImageSet:
    """Labelled images of one split. ``pixels`` is the decoded uint8 cache [N, side, side, 3] or None
    (then ``paths`` are decoded by DataLoader workers). ``skipped`` names unreadable files."""

    paths: list[Path]
    labels: torch.Tensor  # int64 [N]
    class_names: tuple[str, ...]
    preset: str
    image_size: int  # side of the model input
    pixels: np.ndarray | None = None  # the whole folder's cache, shared by its splits
    pixel_rows: np.ndarray | None = None  # row of each image of this split in ``pixels``
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _cache_side(preset: str, image_size: int) -> int:
    # ImageNet-style: keep the 256/224 margin that RandomResizedCrop and the centre crop cut from.
    return image_size if preset == "cifar" else round(image_size * 256 / 224)


def _decode_square(path: str, side: int) -> np.ndarray | None:
    """One image as uint8 [side, side, 3]: short side resized to ``side``, centre crop; None if unreadable."""
    try:
        image = load_rgb(path)
    except (ValueError, FileNotFoundError):
        return None
    if image.size != (side, side):
        scale = side / min(image.size)
        width, height = max(side, round(image.width * scale)), max(side, round(image.height * scale))
        image = image.resize((width, height), Image.BILINEAR, reducing_gap=None)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    return np.asarray(image, dtype=np.uint8)


def _decode_one(job: tuple[str, int]) -> np.ndarray | None:
    return _decode_square(*job)


def _cache_key(root: Path, paths: list[Path], side: int) -> str:
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\n{root.resolve()}\n{side}\n".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _decoded_cache(root: Path, paths: list[Path], side: int, cache_dir: Path, workers: int,
                   show_progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """(pixels memmap [N, side, side, 3], readable mask [N]); decoded once, then read from disk."""
    key = _cache_key(root, paths, side)
    pixels_path, index_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if pixels_path.exists() and index_path.exists():
        readable = np.array(json.loads(index_path.read_text())["readable"], dtype=bool)
        pixels = np.load(pixels_path, mmap_mode="r")
        if pixels.shape == (len(paths), side, side, 3) and len(readable) == len(paths):
            return pixels, readable
    cache_dir.mkdir(parents=True, exist_ok=True)
    readable = np.ones(len(paths), dtype=bool)

    def write(temporary: str) -> None:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=(len(paths), side, side, 3))
        jobs = [(str(path), side) for path in paths]
        if workers > 1 and len(paths) > 2000:
            with get_context("spawn").Pool(workers) as pool:
                decoded = pool.imap(_decode_one, jobs, chunksize=512)
                _fill(array, decoded, readable, show_progress)
        else:
            _fill(array, map(_decode_one, jobs), readable, show_progress)
        array.flush()
        del array

    atomic_write(pixels_path, write)
    atomic_write_bytes(index_path, json.dumps({"readable": readable.tolist(), "root": str(root)}).encode())
    return np.load(pixels_path, mmap_mode="r"), readable


def _fill(array: np.ndarray, decoded, readable: np.ndarray, show_progress: bool) -> None:
    for index, image in enumerate(progress(decoded, total=len(array), desc="decode once", enabled=show_progress,
                                           unit="img")):
        if image is None:
            readable[index] = False
        else:
            array[index] = image


def load_image_folder(
    root: str | os.PathLike,
    *,
    preset: str,
    image_size: int,
    val_split: int = 0,
    cache_dir: str | os.PathLike | None = None,
    cache_limit_bytes: int = DEFAULT_CACHE_LIMIT_BYTES,
    workers: int = 2,
    show_progress: bool = True,
) -> tuple[ImageSet, ImageSet | None]:
    """Read ``root`` (``root/<class>/<image>``) into a training set and, with ``val_split=K``, a
    validation set holding the last K images (in sorted file order) of every class.

    Raises ValueError for a folder with no images or fewer than two classes, or a class with no
    more than K images. Unreadable images are skipped and listed in ``ImageSet.skipped``.
    """
    if preset not in AUGMENTATIONS:
        raise ValueError(f"unknown data preset {preset!r}; choose from {', '.join(AUGMENTATIONS)}")
    if image_size < 8:
        raise ValueError(f"image size must be at least 8 pixels, got {image_size}")
    if val_split < 0:
        raise ValueError(f"--val-split must be >= 0, got {val_split}")
    root = Path(root)
    listing = find_images(root)
    labels = np.array(listing.labels, dtype=np.int64)
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"{root} holds images of only one class ({listing.class_names[present[0]]}); "
                         "training a classifier needs at least two class folders")
    paths = list(listing.paths)
    side = _cache_side(preset, image_size)
    pixels = None
    readable = np.ones(len(paths), dtype=bool)
    if len(paths) * side * side * 3 <= cache_limit_bytes:
        cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        pixels, readable = _decoded_cache(root, paths, side, cache, workers, show_progress)
    skipped = [str(path) for path, ok in zip(paths, readable) if not ok]

    train_rows, val_rows = [], []
    for label in present:
        rows = [int(i) for i in np.flatnonzero((labels == label) & readable)]
        if val_split and len(rows) <= val_split:
            raise ValueError(f"class {listing.class_names[label]!r} has {len(rows)} readable images; "
                             f"--val-split {val_split} would leave none for training")
        cut = len(rows) - val_split
        train_rows += rows[:cut]
        val_rows += rows[cut:]

    def subset(rows: list[int]) -> ImageSet:
        rows_array = np.array(sorted(rows), dtype=np.int64)
        return ImageSet(
            paths=[paths[i] for i in rows_array],
            labels=torch.from_numpy(labels[rows_array]),
            class_names=listing.class_names,
            preset=preset,
            image_size=image_size,
            pixels=pixels,
            pixel_rows=None if pixels is None else rows_array,
            skipped=skipped,
        )

    train_set = subset(train_rows)
    val_set = subset(val_rows) if val_split else None
    return train_set, val_set


def _default_cache_dir() -> Path:
    from squeezenet.weights import cache_dir

    return cache_dir() / "decoded-images"


def batch_order(length: int, *, epoch: int, seed: int, shuffle: bool) -> torch.Tensor:
    """The epoch's sample order: a permutation drawn from (seed, epoch), the same in every process."""
    if not shuffle:
        return torch.arange(length)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(length, generator=generator)


def augment_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of one global batch's augmentation; resumed and distributed runs redraw the same."""
    return (seed * 1_000_003 + epoch) * 1_000_003 + step


def _random_crop_flip(images: torch.Tensor, padding: int, size: int, generator: torch.Generator, share: slice,
                      total: int) -> torch.Tensor:
    """CIFAR augmentation on uint8 NHWC: zero-pad, random ``size`` x ``size`` crop (the image's own side,
    or less for a low-resolution phase), random flip; one gather.
    Parameters are drawn for the whole global batch and ``share`` picks this process's rows."""
    count, height, width, _ = images.shape
    padded = F.pad(images, (0, 0, padding, padding, padding, padding))
    top = torch.randint(0, height + 2 * padding - size + 1, (total,), generator=generator)[share].to(images.device)
    left = torch.randint(0, width + 2 * padding - size + 1, (total,), generator=generator)[share].to(images.device)
    flip = (torch.rand(total, generator=generator) < 0.5)[share].to(images.device)
    rows = top[:, None] + torch.arange(size, device=images.device)
    columns = torch.arange(size, device=images.device).expand(count, size)
    columns = left[:, None] + torch.where(flip[:, None], size - 1 - columns, columns)
    batch_index = torch.arange(count, device=images.device)[:, None, None]
    return padded[batch_index, rows[:, :, None], columns[:, None, :]]


def _random_resized_crop_flip(images: torch.Tensor, size: int, generator: torch.Generator, share: slice,
                              total: int) -> torch.Tensor:
    """ImageNet augmentation for a whole float NCHW batch: RandomResizedCrop (area 8-100%, aspect 3/4-4/3)
    and a random flip, as one affine grid sample. Deviation from torchvision: a box that would
    overflow the image is clamped to it instead of redrawn up to 10 times."""
    count = images.shape[0]
    area = torch.empty(total).uniform_(0.08, 1.0, generator=generator)
    log_ratio = torch.empty(total).uniform_(math.log(3 / 4), math.log(4 / 3), generator=generator)
    ratio = log_ratio.exp()
    width = (area * ratio).sqrt().clamp(max=1.0)
    height = (area / ratio).sqrt().clamp(max=1.0)
    center_x = (torch.rand(total, generator=generator) * 2 - 1) * (1 - width)
    center_y = (torch.rand(total, generator=generator) * 2 - 1) * (1 - height)
    flip = torch.where(torch.rand(total, generator=generator) < 0.5, -1.0, 1.0)
    width, height, center_x, center_y, flip = (v[share] for v in (width, height, center_x, center_y, flip))
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = width * flip, center_x
    theta[:, 1, 1], theta[:, 1, 2] = height, center_y
    grid = F.affine_grid(theta.to(images.device), [count, 3, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass(frozen=True)
class InputPipeline:
    """How uint8 NHWC batches become the model's input: ``preset`` (``AUGMENTATIONS``: normalisation and
    augmentation), the model's input side, the side of training's random crops when smaller (a
    low-resolution phase), and the device and memory layout the tensors go to."""

    preset: str
    image_size: int
    device: torch.device | str = "cpu"
    channels_last: bool = True
    crop_size: int | None = None  # training only; None: image_size


def to_model_input(images: torch.Tensor, pipeline: InputPipeline, *, generator: torch.Generator | None = None,
                   share: slice | None = None, global_size: int | None = None) -> torch.Tensor:
    """uint8 NHWC batch -> normalised float NCHW on ``pipeline.device``; augmented when a ``generator`` is
    given (training from the cache), else centre-cropped to the crop size (evaluation, or worker-augmented).

    The NHWC layout seen as NCHW is exactly channels_last memory, so no copy is made for it.
    """
    preset, device = pipeline.preset, pipeline.device
    train = generator is not None
    crop_size = pipeline.crop_size or pipeline.image_size
    # Random parameters are drawn for all ``global_size`` images of the step; ``share`` are ours.
    share = share if share is not None else slice(0, images.shape[0])
    global_size = global_size if global_size is not None else share.stop
    images = images.to(device, non_blocking=True)
    mean = torch.tensor(CIFAR_MEAN if preset == "cifar" else IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD if preset == "cifar" else IMAGENET_STD, device=device).view(1, 3, 1, 1)
    side = images.shape[1]
    if preset == "cifar":
        if train:
            images = _random_crop_flip(images, 4, crop_size, generator, share, global_size)
        elif side != crop_size:  # evaluation: centre crop (worker-augmented batches are crop_size already)
            offset = (side - crop_size) // 2
            images = images[:, offset:offset + crop_size, offset:offset + crop_size]
        batch = images.permute(0, 3, 1, 2).float().div_(255)
    else:
        batch = images.permute(0, 3, 1, 2).float().div_(255)
        if train:
            batch = _random_resized_crop_flip(batch, crop_size, generator, share, global_size)
        elif side != crop_size:
            offset = (side - crop_size) // 2
            batch = batch[:, :, offset:offset + crop_size, offset:offset + crop_size]
    batch = (batch - mean) / std
    memory_format = torch.channels_last if pipeline.channels_last else torch.contiguous_format
    return batch.contiguous(memory_format=memory_format)


class _FileDataset(torch.utils.data.Dataset):
    """Per-image decode + transforms v2 for sets too big to cache; items are (index, augment seed)."""

    def __init__(self, images: ImageSet, train: bool, crop_size: int | None = None) -> None:
        self.images = images
        size = images.image_size
        crop_size = crop_size or size
        if not train:
            self.transform = v2.Compose([v2.Resize(_cache_side(images.preset, size)), v2.CenterCrop(size)])
        elif images.preset == "cifar":
            # The image is brought to ``size`` first: crops smaller than it keep the objects' scale.
            self.transform = v2.Compose([v2.Resize(size), v2.CenterCrop(size),
                                         v2.RandomCrop(crop_size, padding=4), v2.RandomHorizontalFlip()])
        else:
            self.transform = v2.Compose([v2.RandomResizedCrop(crop_size, antialias=True), v2.RandomHorizontalFlip()])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        try:
            image = load_rgb(self.images.paths[index])
        except (ValueError, FileNotFoundError):
            return None, str(self.images.paths[index])
        # Seeding per item makes the augmentation independent of which worker decodes it.
        torch.manual_seed(seed)
        pixels = self.transform(v2.functional.pil_to_tensor(image))
        return pixels.permute(1, 2, 0).contiguous(), int(self.images.labels[index])


def _collate(items):
    good = [item for item in items if item[0] is not None]
    bad = [item[1] for item in items if item[0] is None]
    if not good:
        return None, None, bad
    pixels, labels = zip(*good)
    return torch.stack(pixels), torch.tensor(labels), bad


@dataclass
class Batch:
    pixels: torch.Tensor  # uint8 NHWC: cached (not yet augmented) or worker-augmented
    labels: torch.Tensor
    augment_seed: int
    share: slice  # this process's rows of the global batch
    global_size: int  # images in the global batch
    augmented: bool  # True when workers already applied the transforms
    skipped: list[str]


@dataclass(frozen=True)
class Batching:
    """How `epoch_batches` cuts an ImageSet: the GLOBAL batch size; training (a shuffled order and
    augmentation seeds drawn from ``seed``, the last incomplete batch dropped) or evaluation (file
    order, every image); this process's share (``rank`` of ``world_size``); DataLoader decoding
    processes for sets that stream."""

    batch_size: int
    train: bool = False
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    workers: int = 2


def epoch_batches(images: ImageSet, batching: Batching, *, epoch: int, start_step: int = 0,
                  crop_size: int | None = None) -> Iterator[Batch]:
    """This process's share of every global batch of one epoch, starting at ``start_step``.

    The epoch's order is cut into global batches of ``batching.batch_size`` and process ``rank``
    takes rows ``[rank*b, (rank+1)*b)`` of each, b = batch_size / world_size. Training drops the
    last incomplete global batch (every step then averages the same number of images).
    Evaluation keeps every image and splits each batch as evenly as possible.
    ``crop_size``: the side of streamed training crops (cached batches are cropped by `to_model_input`).
    """
    batch_size, seed, train = batching.batch_size, batching.seed, batching.train
    rank, world_size = batching.rank, batching.world_size
    order = batch_order(len(images), epoch=epoch, seed=seed, shuffle=train)
    steps = len(order) // batch_size if train else math.ceil(len(order) / batch_size)
    shares = []
    for step in range(start_step, steps):
        rows = order[step * batch_size:(step + 1) * batch_size]
        bounds = [len(rows) * r // world_size for r in range(world_size + 1)]
        shares.append((step, rows[bounds[rank]:bounds[rank + 1]], slice(bounds[rank], bounds[rank + 1]), len(rows)))
    if images.pixels is not None:
        for step, rows, share, size in shares:
            pixels = images.pixels[images.pixel_rows[rows.numpy()]]
            yield Batch(torch.from_numpy(pixels), images.labels[rows], augment_seed(seed, epoch, step), share, size,
                        False, [])
        return
    dataset = _FileDataset(images, train, crop_size)
    sampler = [[(int(i), augment_seed(seed, epoch, step) * 100_003 + int(i)) for i in rows] for step, rows, _, _ in shares]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=batching.workers,
                                         collate_fn=_collate, persistent_workers=False,
                                         prefetch_factor=4 if batching.workers else None)
    for (step, _, share, size), (pixels, labels, bad) in zip(shares, loader):
        if pixels is None:
            continue
        yield Batch(pixels, labels, augment_seed(seed, epoch, step), share, size, True, bad)
