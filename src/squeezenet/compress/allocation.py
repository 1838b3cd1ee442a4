"""Per-layer bit allocation by sensitivity, without labels: which width each layer is quantized to.

1. Sensitivity (in the spirit of Han et al. 2015b's per-layer sensitivity analysis, measured on the
   output instead of on labels): quantize ONE layer at a time at each candidate width and record
   the KL divergence of the network's softmax from the uncompressed model's on calibration images.
2. Sizes: each layer's bytes at each width, as the .sqz writer stores it (``layer_sizes``).
3. Allocation (a rule, not a search): start with every layer at its widest width and repeatedly
   narrow, by one bit, the layer that saves the most bytes per unit of added distortion, while the
   summed distortion stays within a budget (or until the layers fit a byte target). Summing
   per-layer distortions assumes they add up, the usual first-order approximation (as in HAWQ,
   Dong et al. 2019). Han et al. choose the bits per layer type by hand (conv 8, fc 5); this is
   where we deviate, for a file-size target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from squeezenet.compress.calibration import CalibrationImages
from squeezenet.compress.distill import kl_divergence, teacher_logits
from squeezenet.compress.entropy import encode_symbols
from squeezenet.compress.quantize import LayerQuantization, quantize_layer, quantize_model
from squeezenet.models import weight_layers
from squeezenet.progress import progress

__all__ = ["BitAllocation", "AllocationResult", "allocate", "allocate_bits", "calibration_sensitivity",
           "layer_sizes", "measure_sensitivity"]


@dataclass(frozen=True)
class BitAllocation:
    """The allocation rule of a recipe: candidate widths and the budget (or byte target)."""

    candidate_bits: tuple[int, ...]  # widths the allocation may give a layer
    distortion_budget: float = math.inf  # summed single-layer KL (nats) on the sensitivity images
    max_bytes: int | None = None  # if set, the allocation instead stops once the layers fit this size
    sensitivity_every: int = 10  # sensitivity on every n-th calibration image (cost: layers x widths passes)


@dataclass
class AllocationResult:
    bits: dict[str, int]
    sensitivity: dict[str, dict[int, float]]
    estimated_sizes: dict[str, dict[int, int]]


def allocate(
    teacher: nn.Module,
    allocation: BitAllocation,
    calibration: CalibrationImages,
    *,
    coder: str,
    float16: bool,
    sensitivity: dict[str, dict[int, float]] | None = None,
    show_progress: bool = False,
) -> AllocationResult:
    """Measure (or reuse) the sensitivity, size every layer at every width, allocate the widths."""
    if sensitivity is None:
        sensitivity = calibration_sensitivity(teacher, allocation, calibration, show_progress=show_progress)
    sizes = layer_sizes(teacher, allocation.candidate_bits, coder, float16)
    if allocation.max_bytes is not None:
        bits = allocate_bits(sizes, sensitivity, max_bytes=allocation.max_bytes)
    else:
        bits = allocate_bits(sizes, sensitivity, allocation.distortion_budget)
    return AllocationResult(bits, sensitivity, sizes)


def calibration_sensitivity(
    teacher: nn.Module, allocation: BitAllocation, calibration: CalibrationImages, *, show_progress: bool = False
) -> dict[str, dict[int, float]]:
    """Single-layer sensitivity on the centre crops of every ``sensitivity_every``-th calibration image."""
    images, crop_size = calibration.images, calibration.crop_size
    top = (images.shape[-2] - crop_size) // 2
    left = (images.shape[-1] - crop_size) // 2
    centre = calibration.to_input(images[:: allocation.sensitivity_every, :, top : top + crop_size, left : left + crop_size])
    reference = teacher_logits(teacher, centre)
    return measure_sensitivity(teacher, centre, reference, list(allocation.candidate_bits), show_progress=show_progress)


def layer_sizes(model: nn.Module, candidate_bits: tuple[int, ...], coder: str, float16: bool) -> dict[str, dict[int, int]]:
    """``{layer: {bits: bytes}}``: each layer's k-means quantization as ``pipeline.encode_layers`` and
    the .sqz writer store it (coded codes and gaps at the layer's best gap width, float16 codebook
    without its 0.0 entry, float16 bias; the few header bytes left out)."""
    from squeezenet.compress.pipeline import encode_layers

    float_bytes = 2 if float16 else 4
    sizes: dict[str, dict[int, int]] = {}
    for bits in candidate_bits:
        quantizations = quantize_model(model, bits)
        for (name, _), sparse in zip(weight_layers(model), encode_layers(model, quantizations, coder)):
            coded = len(encode_symbols(sparse.codes, coder)) + len(encode_symbols(sparse.gaps, coder))
            sizes.setdefault(name, {})[bits] = coded + float_bytes * (len(sparse.codebook) - 1 + len(sparse.bias))
    return sizes


def _suffix_forward(model: nn.Module, name: str) -> tuple[int, Callable[[torch.Tensor], torch.Tensor]] | None:
    """For a ``features``/``classifier`` network (SqueezeNet, AlexNet), the index of the features stage
    that holds ``name`` and a function running the network from that stage's input; else None."""
    features = getattr(model, "features", None)
    classifier = getattr(model, "classifier", None)
    if not isinstance(features, nn.Sequential) or classifier is None or not name.startswith("features."):
        return None
    stage = int(name.split(".")[1])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(classifier(features[stage:](x)), 1)

    return stage, run


@torch.no_grad()
def measure_sensitivity(
    model: nn.Module,
    inputs: torch.Tensor,
    teacher: torch.Tensor,
    bit_widths: list[int],
    *,
    quantizer: Callable[[torch.Tensor, int], LayerQuantization] = quantize_layer,
    batch_size: int = 50,
    show_progress: bool = False,
) -> dict[str, dict[int, float]]:
    """``{layer: {bits: KL}}``: the output divergence from ``teacher`` when only that layer is quantized.

    ``teacher`` holds the model's own outputs on ``inputs``. For SqueezeNet-like models the input of
    each features stage is computed once, so each measurement runs only the network's suffix.
    """
    if not bit_widths:
        raise ValueError("no bit widths to measure")
    model.eval()
    layers = weight_layers(model)
    stage_inputs: dict[int, torch.Tensor] = {}
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        activation = inputs
        for index, stage in enumerate(features):
            stage_inputs[index] = activation
            activation = torch.cat([stage(activation[s : s + batch_size]) for s in range(0, len(activation), batch_size)])
    result: dict[str, dict[int, float]] = {}
    work = [(name, module, bits) for name, module in layers for bits in bit_widths]
    for name, module, bits in progress(work, total=len(work), desc="sensitivity", enabled=show_progress):
        original = module.weight.detach().clone()
        module.weight.copy_(quantizer(original, bits).weight().to(original.dtype))
        suffix = _suffix_forward(model, name)
        if suffix is not None and suffix[0] in stage_inputs:
            start, run = suffix
            source = stage_inputs[start]
        else:
            run, source = model, inputs
        outputs = torch.cat([run(source[s : s + batch_size]) for s in range(0, len(source), batch_size)])
        module.weight.copy_(original)
        result.setdefault(name, {})[bits] = float(kl_divergence(outputs, teacher))
    return result


def allocate_bits(
    sizes: dict[str, dict[int, float]],
    distortions: dict[str, dict[int, float]],
    budget: float = math.inf,
    *,
    max_bytes: float | None = None,
) -> dict[str, int]:
    """Greedy rate-distortion allocation: fewest bytes with summed distortion within ``budget``,
    or, with ``max_bytes``, the least distortion found by the same steps once the layers fit it.

    Every layer starts at its widest candidate width, whose distortion counts as zero. Each step
    narrows by one candidate width the layer with the most bytes saved per unit of distortion added
    (a narrowing that adds none goes first), skipping any step that would exceed the budget, until
    no layer can be narrowed. A layer's distortion is made non-decreasing as it narrows (running
    maximum), so measurement noise never makes a narrower width look better than a wider one.
    With ``max_bytes`` the steps stop as soon as the summed layer sizes fit it (ValueError if they
    never do).
    """
    if budget < 0:
        raise ValueError(f"distortion budget must be non-negative, got {budget}")
    if set(sizes) != set(distortions):
        raise ValueError("sizes and distortions must name the same layers")
    widths, added_cost = {}, {}
    for name in sizes:
        widths[name] = sorted(sizes[name], reverse=True)
        if not widths[name] or set(widths[name]) != set(distortions[name]):
            raise ValueError(f"{name}: sizes and distortions must cover the same bit widths")
        measured = [distortions[name][bits] for bits in widths[name]]
        running = np.maximum.accumulate(np.asarray(measured, dtype=np.float64))
        added_cost[name] = running - running[0]
    position = {name: 0 for name in sizes}
    spent = 0.0
    while True:
        if max_bytes is not None and sum(sizes[n][widths[n][position[n]]] for n in sizes) <= max_bytes:
            return {name: widths[name][position[name]] for name in sizes}
        best, best_score = None, -math.inf
        for name in sizes:
            step = position[name]
            if step + 1 >= len(widths[name]):
                continue
            saved = sizes[name][widths[name][step]] - sizes[name][widths[name][step + 1]]
            added = float(added_cost[name][step + 1] - added_cost[name][step])
            if saved <= 0 or spent + added > budget:
                continue
            score = math.inf if added == 0 else saved / added
            if score > best_score:
                best, best_score = name, score
        if best is None:
            if max_bytes is not None:
                raise ValueError(f"no allocation of these bit widths fits {max_bytes:,.0f} bytes")
            return {name: widths[name][position[name]] for name in sizes}
        spent += float(added_cost[best][position[best] + 1] - added_cost[best][position[best]])
        position[best] += 1
