"""Photos in, float32 arrays out, with Pillow and NumPy only: the evaluation presets without torch.

For a device that runs `squeezenet.runtime_numpy` and has no torch. The three presets are the ones
`squeezenet.data.preprocess` builds with torchvision; torchvision applies its resize and centre
crop to the PIL image, so the same Pillow calls here give the same pixels (the tests compare both
on real photos), then the same float32 scaling and normalisation:

- ``torchvision``: resize the short side to ``256 * size // 224`` (bilinear, antialiased), centre
  crop ``size`` (224), RGB in 0..1 normalised by the ImageNet mean/std.
- ``caffe``: warp to a ``256 * size // 227`` square, as Caffe's ImageNet databases stored photos,
  centre crop ``size`` (227), BGR on the 0..255 scale minus the mean 104/117/123, no scaling.
- ``cifar``: resize the short side to ``size`` (32), centre crop, CIFAR-10 mean/std.

No module of this package that imports torch is imported here, directly or indirectly.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["PREPROCESSINGS", "DEFAULT_INPUT_SIZES", "load_photo", "load_photos", "load_rgb", "normalisation",
           "preprocess_image", "resize_side"]

PREPROCESSINGS = ("torchvision", "caffe", "cifar")
DEFAULT_INPUT_SIZES = {"torchvision": 224, "caffe": 227, "cifar": 32}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe's ImageNet mean in BGR order, on the 0..255 scale (the published model's training input).
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image as RGB, as `squeezenet.data.load_rgb` does (alpha is composited on white).

    Raises FileNotFoundError for a missing file and ValueError for a file that is not a readable
    image (truncated, not an image, or a decompression bomb over Pillow's pixel limit).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                    # Composite on white so transparent pixels do not turn black.
                    image = image.convert("RGBA")
                    background = Image.new("RGB", image.size, (255, 255, 255))
                    background.paste(image, mask=image.getchannel("A"))
                    return background
                return image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as error:
        raise ValueError(f"{Path(path).name}: not a readable image ({' '.join(str(error).split())[:120]})") from None


def _resize_short_side(image: Image.Image, side: int) -> Image.Image:
    """torchvision's ``Resize(int)``: the short side becomes ``side``, the long side is truncated."""
    width, height = image.size
    if width <= height:
        size = (side, int(side * height / width))
    else:
        size = (int(side * width / height), side)
    return image.resize(size, Image.BILINEAR)


def _centre_crop(image: Image.Image, size: int) -> Image.Image:
    """torchvision's ``CenterCrop``: the offset is rounded half to even, as Python's round does."""
    width, height = image.size
    if width < size or height < size:
        raise ValueError(f"image of {width}x{height} is smaller than the {size}x{size} crop")
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def resize_side(preset: str, input_size: int) -> tuple[int, bool]:
    """(side, warp): the resize before the centre crop. ``warp`` squashes the photo to a side x side
    square (Caffe); otherwise the short side becomes ``side`` and the aspect ratio is kept."""
    if preset == "torchvision":
        return 256 * input_size // 224, False
    if preset == "caffe":
        return 256 * input_size // 227, True
    if preset == "cifar":
        return input_size, False
    raise ValueError(f"unknown preprocessing preset {preset!r}; choose from {', '.join(PREPROCESSINGS)}")


def normalisation(preset: str) -> tuple[bool, float, tuple[float, ...], tuple[float, ...]]:
    """(bgr, scale, mean, std): input = (pixel / 255 * scale - mean) / std, channels reversed when bgr."""
    if preset == "torchvision":
        return False, 1.0, IMAGENET_MEAN, IMAGENET_STD
    if preset == "caffe":
        return True, 255.0, CAFFE_MEAN_BGR, (1.0, 1.0, 1.0)
    if preset == "cifar":
        return False, 1.0, CIFAR_MEAN, CIFAR_STD
    raise ValueError(f"unknown preprocessing preset {preset!r}; choose from {', '.join(PREPROCESSINGS)}")


def preprocess_image(image: Image.Image, preset: str, input_size: int | None = None) -> np.ndarray:
    """An RGB Pillow image -> float32 [3, size, size] as ``squeezenet.data.preprocess(preset)`` gives it."""
    if preset not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing preset {preset!r}; choose from {', '.join(PREPROCESSINGS)}")
    size = input_size or DEFAULT_INPUT_SIZES[preset]
    if size < 1:
        raise ValueError(f"input size must be at least 1, got {size}")
    side, warp = resize_side(preset, size)
    resized = image.resize((side, side), Image.BILINEAR) if warp else _resize_short_side(image, side)
    pixels = np.asarray(_centre_crop(resized, size), dtype=np.uint8).transpose(2, 0, 1)
    bgr, scale, mean, std = normalisation(preset)
    if bgr:
        pixels = pixels[::-1]
    # The same float32 steps as torchvision (ToDtype scales by 1/255, then Normalize; Caffe's
    # preset multiplies back by 255), so the values agree to float32 rounding.
    values = pixels.astype(np.float32) / np.float32(255)
    if scale != 1.0:
        values = values * np.float32(scale)
    values = values - np.array(mean, np.float32).reshape(3, 1, 1)
    if std != (1.0, 1.0, 1.0):
        values = values / np.array(std, np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray(values)


def load_photo(path: str | os.PathLike, preset: str, input_size: int | None = None) -> np.ndarray:
    """One photo file -> float32 [3, size, size], the input the model of that preset expects."""
    return preprocess_image(load_rgb(path), preset, input_size)


def load_photos(paths: Iterable[str | os.PathLike], preset: str, input_size: int | None = None) -> np.ndarray:
    """Photo files -> float32 [N, 3, size, size]; an unreadable file raises ValueError naming it."""
    paths = list(paths)
    if not paths:
        raise ValueError("no photos given")
    return np.stack([load_photo(path, preset, input_size) for path in paths])
