"""Named compression recipes: the settings behind ``squeezenet compress --preset NAME``.

``imagenet-small`` compresses the published Deep Compression SqueezeNet with no labels:
per-layer bit widths allocated by sensitivity on calibration images (``distill.allocate_bits``),
linear-initialised k-means codebooks (Han et al. 2016), then the shared centroids distilled
from the uncompressed model (``distill.distill``). Its numbers, and the command that measured them,
are in BENCHMARKS.md (section ``imagenet_compression``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from squeezenet.compress.distill import (
    DistillConfig,
    allocate_bits,
    distill,
    measure_sensitivity,
    teacher_logits,
)
from squeezenet.compress.entropy import encode_symbols
from squeezenet.compress.quantize import LayerQuantization, quantize_model
from squeezenet.models import weight_layers

__all__ = [
    "CompressionPreset",
    "CompressionResult",
    "PRESETS",
    "calibration_split",
    "compress_with_preset",
    "layer_sizes",
    "preset_sensitivity",
    "round_to_float16",
]


@dataclass(frozen=True)
class CompressionPreset:
    name: str
    description: str
    candidate_bits: tuple[int, ...]  # widths the allocation may give a layer
    distortion_budget: float  # summed single-layer KL (nats) on the sensitivity images
    max_bytes: int | None = None  # if set, the allocation instead stops once the layers fit this size
    sensitivity_every: int = 10  # sensitivity on every n-th calibration image (cost: layers x widths passes)
    distill: DistillConfig = field(default_factory=DistillConfig)
    preprocess: str = "caffe"
    coder: str = "ans"  # entropy coder of codes and gaps in the .sqz file
    float16: bool = True  # round centroids and biases to float16, which .sqz then stores in 2 bytes


PRESETS: dict[str, CompressionPreset] = {
    "imagenet-small": CompressionPreset(
        name="imagenet-small",
        description="published ImageNet SqueezeNet under 400 KB: sensitivity bit allocation + centroid distillation",
        candidate_bits=(8, 7, 6, 5, 4),
        # The rule is the goal itself: the least summed single-layer KL the greedy allocation finds
        # with the layers at most 390,000 bytes (10 KB under the 400,000 for headers and for
        # the code statistics moving during distillation). No evaluation photo is involved.
        distortion_budget=math.inf,
        max_bytes=390_000,
        sensitivity_every=10,
        distill=DistillConfig(epochs=4, batch_size=25, learning_rate=0.002, temperature=1.0, train_bias=True),
    ),
}


def calibration_split(paths: list[Path] | tuple[Path, ...]) -> tuple[list[int], list[int]]:
    """Fixed rule: sort by file name; even positions calibrate, odd positions evaluate."""
    order = sorted(range(len(paths)), key=lambda index: Path(paths[index]).name)
    return order[0::2], order[1::2]


@dataclass
class CompressionResult:
    student: nn.Module  # plain weights equal to the trained codebooks[codes]
    quantizations: dict[str, LayerQuantization]
    bits: dict[str, int]
    sensitivity: dict[str, dict[int, float]]
    estimated_sizes: dict[str, dict[int, int]]
    distill_losses: list[float]


def compress_with_preset(
    teacher: nn.Module,
    preset: CompressionPreset,
    images: torch.Tensor,
    to_input: Callable[[torch.Tensor], torch.Tensor],
    *,
    crop_size: int,
    show_progress: bool = False,
    budget: float | None = None,
    max_bytes: int | None = None,
    sensitivity: dict[str, dict[int, float]] | None = None,
) -> CompressionResult:
    """Run the preset on uint8 calibration ``images`` [N, 3, H, W] (H, W >= crop_size).

    ``budget`` or ``max_bytes`` overrides the preset's allocation rule and ``sensitivity`` reuses an earlier
    measurement on the same images (the benchmark sweeps budgets for its curve).
    """
    if len(images) == 0:
        raise ValueError("no calibration images")
    if sensitivity is None:
        sensitivity = preset_sensitivity(teacher, preset, images, to_input, crop_size=crop_size, show_progress=show_progress)
    sizes = layer_sizes(teacher, preset)
    if max_bytes is not None:
        bits = allocate_bits(sizes, sensitivity, max_bytes=max_bytes)
    elif budget is None and preset.max_bytes is not None:
        bits = allocate_bits(sizes, sensitivity, max_bytes=preset.max_bytes)
    else:
        bits = allocate_bits(sizes, sensitivity, preset.distortion_budget if budget is None else budget)
    quantizations = quantize_model(teacher, bits)
    student, trained, losses = distill(
        teacher, quantizations, images, to_input, preset.distill, crop_size=crop_size, show_progress=show_progress
    )
    if preset.float16:
        trained = round_to_float16(student, trained)
    return CompressionResult(student, trained, bits, sensitivity, sizes, losses)


def preset_sensitivity(
    teacher: nn.Module,
    preset: CompressionPreset,
    images: torch.Tensor,
    to_input: Callable[[torch.Tensor], torch.Tensor],
    *,
    crop_size: int,
    show_progress: bool = False,
) -> dict[str, dict[int, float]]:
    """Single-layer sensitivity on the centre crops of every ``sensitivity_every``-th calibration image."""
    top = (images.shape[-2] - crop_size) // 2
    left = (images.shape[-1] - crop_size) // 2
    centre = to_input(images[:: preset.sensitivity_every, :, top : top + crop_size, left : left + crop_size])
    reference = teacher_logits(teacher, centre)
    return measure_sensitivity(teacher, centre, reference, list(preset.candidate_bits), show_progress=show_progress)


def layer_sizes(model: nn.Module, preset: CompressionPreset) -> dict[str, dict[int, int]]:
    """``{layer: {bits: bytes}}``: each layer's k-means quantization as ``pipeline.encode_layers`` and
    the .sqz writer store it (coded codes and gaps at the layer's best gap width, float16 codebook
    without its 0.0 entry, float16 bias; the few header bytes left out)."""
    from squeezenet.compress.pipeline import encode_layers

    float_bytes = 2 if preset.float16 else 4
    sizes: dict[str, dict[int, int]] = {}
    for bits in preset.candidate_bits:
        quantizations = quantize_model(model, bits)
        for (name, _), sparse in zip(weight_layers(model), encode_layers(model, quantizations, preset.coder)):
            coded = len(encode_symbols(sparse.codes, preset.coder)) + len(encode_symbols(sparse.gaps, preset.coder))
            sizes.setdefault(name, {})[bits] = coded + float_bytes * (len(sparse.codebook) - 1 + len(sparse.bias))
    return sizes


def round_to_float16(model: nn.Module, quantizations: dict[str, LayerQuantization]) -> dict[str, LayerQuantization]:
    """Round codebooks and biases to float16 values (in the model too), so the file stores 2 bytes each.

    float16 keeps 11 significant bits: a relative error of at most 2**-11, far below the spacing
    between the centroids of even a 256-entry codebook.
    """
    rounded = {}
    with torch.no_grad():
        for name, module in weight_layers(model):
            quantization = quantizations[name]
            codebook = quantization.codebook.to(torch.float16).to(torch.float32)
            rounded[name] = LayerQuantization(codebook, quantization.codes, quantization.bits)
            module.weight.copy_(rounded[name].weight())
            if module.bias is not None:
                module.bias.copy_(module.bias.to(torch.float16).to(torch.float32))
    return rounded
