"""Images in, tensors out: the ImageNet-1k class list, photo folders and preprocessing presets.

Two folder layouts are read: an ImageFolder tree (``DIR/<class>/<image>``; class folders named by
wnid map to their ImageNet index, others are indexed in sorted order like torchvision), and a flat
folder of ``<wnid>_<name>.JPEG`` photos (the layout of the ImageNet sample set).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from torchvision.transforms import v2

# The presets and the photo reader are torch-free (a device without torch preprocesses with them too).
from squeezenet.preprocess_numpy import (
    CAFFE_MEAN_BGR,
    CIFAR_MEAN,
    CIFAR_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PREPROCESSINGS,
    load_rgb,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageNetClass",
    "LabelledImages",
    "PhotoDataset",
    "PREPROCESSINGS",
    "default_preprocess",
    "find_images",
    "imagenet_classes",
    "load_rgb",
    "preprocess",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str
    name: str


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """All 1000 classes in the standard order (index = position of the wnid in the sorted wnids)."""
    text = resources.files("squeezenet").joinpath("imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(ImageNetClass(int(index), wnid, name) for index, wnid, name in rows)


@lru_cache(maxsize=1)
def _wnid_index() -> dict[str, int]:
    return {c.wnid: c.index for c in imagenet_classes()}


@dataclass(frozen=True)
class LabelledImages:
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...]  # index -> name for the label space these labels live in


def find_images(folder: str | Path) -> LabelledImages:
    """Read an ImageFolder tree or a flat ``<wnid>_<name>.JPEG`` folder, deterministically sorted."""
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"data folder not found: {folder}")
    if not root.is_dir():
        raise NotADirectoryError(f"data path is not a folder: {folder}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_dirs:
        return _image_folder(root, class_dirs)
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images in {folder}")
    wnids = _wnid_index()
    labels = []
    for path in files:
        wnid = path.name.split("_", 1)[0]
        if wnid not in wnids:
            raise ValueError(f"{path.name}: a flat photo folder needs names '<wnid>_<name>.JPEG'")
        labels.append(wnids[wnid])
    names = tuple(c.name for c in imagenet_classes())
    return LabelledImages(tuple(files), tuple(labels), names)


def _image_folder(root: Path, class_dirs: list[Path]) -> LabelledImages:
    wnids = _wnid_index()
    by_wnid = all(d.name in wnids for d in class_dirs)
    paths, labels = [], []
    for position, class_dir in enumerate(class_dirs):
        label = wnids[class_dir.name] if by_wnid else position
        for path in sorted(class_dir.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(label)
    if not paths:
        raise ValueError(f"no images in {root}")
    names = tuple(c.name for c in imagenet_classes()) if by_wnid else tuple(d.name for d in class_dirs)
    return LabelledImages(tuple(paths), tuple(labels), names)


class _CaffeInput(torch.nn.Module):
    """RGB float in [0, 1] -> BGR on the 0..255 scale minus Caffe's mean, no scaling."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        bgr = image.flip(-3) * 255.0
        return bgr - torch.tensor(CAFFE_MEAN_BGR, dtype=bgr.dtype).reshape(3, 1, 1)


def preprocess(preset: str, *, input_size: int | None = None) -> v2.Compose:
    """Evaluation transforms: PIL RGB image -> float tensor [3, H, W].

    - ``torchvision``: resize the short side to 256, centre crop 224, ImageNet mean/std.
    - ``caffe``: warp to 256x256 as Caffe's databases do, centre crop 227, BGR, minus mean 104/117/123,
      no scaling.
    - ``cifar``: 32x32, CIFAR-10 mean/std (what the trainer's CIFAR preset normalises with).
    ``input_size`` overrides the crop size.
    """
    to_float = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if preset == "torchvision":
        size = input_size or 224
        return v2.Compose([v2.Resize(256 * size // 224), v2.CenterCrop(size), *to_float,
                           v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    if preset == "caffe":
        size = input_size or 227
        # Caffe's ImageNet databases store every photo warped to 256x256 (convert_imageset), so the
        # published model saw warped, not aspect-preserving, resizes.
        side = 256 * size // 227
        return v2.Compose([v2.Resize((side, side)), v2.CenterCrop(size), *to_float, _CaffeInput()])
    if preset == "cifar":
        size = input_size or 32
        return v2.Compose([v2.Resize(size), v2.CenterCrop(size), *to_float, v2.Normalize(CIFAR_MEAN, CIFAR_STD)])
    raise ValueError(f"unknown preprocessing preset {preset!r}; choose from {', '.join(PREPROCESSINGS)}")


def default_preprocess(model: torch.nn.Module) -> str:
    """The preset a model was trained with: Caffe for the published release, CIFAR for 32x32 inputs."""
    spec = getattr(model, "spec", None)
    if getattr(model, "preprocess", None) in PREPROCESSINGS:
        return model.preprocess
    if spec is not None and getattr(spec, "conv10_padding", 0) == 1:
        return "caffe"
    if spec is not None and spec.input_size <= 64:
        return "cifar"
    return "torchvision"


class PhotoDataset(torch.utils.data.Dataset):
    """(tensor, label) pairs; an unreadable image gives None, which `collate_skipping` drops and counts."""

    def __init__(self, images: LabelledImages, transform, *, on_bad_image: str = "skip") -> None:
        if on_bad_image not in ("skip", "fail"):
            raise ValueError(f"on_bad_image must be 'skip' or 'fail', got {on_bad_image!r}")
        self.images = images
        self.transform = transform
        self.on_bad_image = on_bad_image

    def __len__(self) -> int:
        return len(self.images.paths)

    def __getitem__(self, index: int):
        path = self.images.paths[index]
        try:
            image = load_rgb(path)
        except ValueError:
            if self.on_bad_image == "fail":
                raise
            return None
        return self.transform(image), self.images.labels[index], index


def collate_skipping(batch):
    """Stack the readable samples; report how many in this batch were skipped."""
    good = [item for item in batch if item is not None]
    skipped = len(batch) - len(good)
    if not good:
        return None, None, None, skipped
    images, labels, indices = zip(*good)
    return torch.stack(images), torch.tensor(labels), torch.tensor(indices), skipped
