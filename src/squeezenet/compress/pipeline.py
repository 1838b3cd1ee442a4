"""Deep Compression of a trained model in one call: prune -> quantize -> entropy-code -> .sqz.

Han et al. 2016's three stages, each in its own module (``prune``, ``quantize``, ``entropy``),
chained here by one recipe (``CompressionRecipe``) that every caller fills in: the CLI, Table 2's
rows, the ``imagenet-small`` recipe and the benchmarks. The stages are functions of their own:

- ``prune_stage(model, recipe)`` -> the folded, pruned model and the fraction of weights kept;
- ``quantize_stage(model, recipe)`` -> k-means codebooks and codes (then retrained centroids);
- ``encode_model(model, quantizations, recipe)`` -> the sparse layers and the .sqz bytes.

Retraining between the stages is the recipe's ``retrain(model)`` (the trainer lives in
``squeezenet.train``): after each pruning round, with the masks held, and after quantization, with
the weights tied to their codebooks so that only the centroids (and biases) learn. Layer names are
resolved by ``layer_settings`` (module names, paper names such as ``fire2/expand3x3``, prefixes,
``"default"``).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from squeezenet.compress.allocation import AllocationResult, BitAllocation, allocate
from squeezenet.compress.calibration import CalibrationImages
from squeezenet.compress.distill import DistillConfig, distill
from squeezenet.compress.entropy import CODERS, encode_symbols
from squeezenet.compress.layer_settings import layer_aliases, parse_layer_values, resolve_layer_values
from squeezenet.compress.prune import (
    apply_masks,
    iterative_pruning,
    magnitude_masks,
    mask_sparsities,
    remove_masks,
    sensitivity_masks,
)
from squeezenet.compress.quantize import (
    LayerQuantization,
    quantize_model,
    round_to_float16,
    tie_weights,
    to_sparse_layer,
    untie_weights,
)
from squeezenet.compress.sparse import SparseLayer
from squeezenet.compress.sqz import MAX_BITS, encode_sqz
from squeezenet.models import count_parameters, fold_batch_norm, weight_layers
from squeezenet.safe_io import atomic_write_bytes

__all__ = [
    "BATCH_NORM_STRATEGIES",
    "GAP_POLICIES",
    "CompressionRecipe",
    "CompressionResult",
    "QuantizedModel",
    "compress_model",
    "prune_stage",
    "quantize_stage",
    "encode_model",
    "encode_layers",
    "paper_max_gap",
    "layer_aliases",
    "parse_layer_values",
    "resolve_layer_values",
    "prune_model",
    "MAX_GAP_CANDIDATES",
    "model_extras",
]

# Gap widths tried per layer; the one whose coded stream is smallest wins. With entropy coding a
# wide gap alphabet costs little (rare long gaps), while a narrow one pays for filler entries.
MAX_GAP_CANDIDATES = (15, 31, 63, 127, 255, 511, 1023, 2047, 4095)
# "searched": per layer, the candidate whose coded stream is smallest; "paper": Han et al.'s fixed
# relative-index widths, 4 bits (gap <= 15) in convolutions and 5 bits (<= 31) in fc layers.
GAP_POLICIES = ("searched", "paper")
# "prune-with-batch-norm": prune (and retrain) the model with its BatchNorm in place, fold after;
# "fold-first": fold BatchNorm into the convolutions, then prune the BN-free network.
BATCH_NORM_STRATEGIES = ("prune-with-batch-norm", "fold-first")


@dataclass(frozen=True)
class CompressionRecipe:
    """What to do to each weight layer. Per-layer values are a number or a mapping by layer name
    (module or paper name, a prefix such as ``fire2``, ``"default"`` for the rest)."""

    bits: int | dict[str, int] = 8
    coder: str = "ans"  # "ans", "huffman" or "fixed"
    sparsity: float | dict[str, float] | None = None  # prune to this fraction of zeros first
    quality: float | dict[str, float] | None = None  # or Han et al.'s threshold = quality * std(w)
    prune_rounds: int = 1  # with retraining: prune-retrain rounds on the way to the final sparsity
    # None: "prune-with-batch-norm" when retraining, else "fold-first". Retraining a folded, BN-free
    # SqueezeNet after pruning left it at chance (measured on CIFAR-10), while BatchNorm
    # renormalises the pruned layers and the network recovers.
    batch_norm: str | None = None
    gap_policy: str = "searched"
    gap_candidates: tuple[int, ...] = MAX_GAP_CANDIDATES  # the widths "searched" tries
    init: str = "linear"  # k-means initialisation
    # Called after each pruning round (masks held, BatchNorm in place) and, unless
    # ``retrain_centroids`` is given, after quantization (BatchNorm folded, weights tied to
    # trainable centroids: the folded network usually wants a smaller learning rate).
    retrain: Callable[[nn.Module], object] | None = field(default=None, compare=False)
    retrain_centroids: Callable[[nn.Module], object] | None = field(default=None, compare=False)
    # Label-free alternatives (need calibration images): widths allocated by sensitivity instead of
    # ``bits``, and centroids distilled from the uncompressed model instead of retrained.
    allocation: BitAllocation | None = None
    distillation: DistillConfig | None = None
    float16: bool = False  # round centroids and biases to float16, which .sqz then stores in 2 bytes

    def __post_init__(self) -> None:
        if self.coder not in CODERS:
            raise ValueError(f"unknown coder {self.coder!r}; choose from {', '.join(CODERS)}")
        if self.sparsity is not None and self.quality is not None:
            raise ValueError("give a target sparsity or a sensitivity quality, not both")
        if self.prune_rounds < 1:
            raise ValueError(f"prune_rounds must be at least 1, got {self.prune_rounds}")
        if self.batch_norm is not None and self.batch_norm not in BATCH_NORM_STRATEGIES:
            raise ValueError(f"unknown BatchNorm strategy {self.batch_norm!r}; choose from {', '.join(BATCH_NORM_STRATEGIES)}")
        if self.gap_policy not in GAP_POLICIES:
            raise ValueError(f"unknown gap policy {self.gap_policy!r}; choose from {', '.join(GAP_POLICIES)}")

    @property
    def prunes(self) -> bool:
        return self.sparsity is not None or self.quality is not None

    @property
    def batch_norm_strategy(self) -> str:
        if self.batch_norm is not None:
            return self.batch_norm
        return "prune-with-batch-norm" if self.retrain is not None else "fold-first"


@dataclass
class CompressionResult:
    spec: dict
    layers: list[SparseLayer]
    bits: list[int]
    coder: str
    quantizations: dict[str, LayerQuantization]
    data: bytes = field(repr=False)
    breakdown: dict
    parameters: int  # weights and biases of the (BN-folded) model
    nonzero_weights: int
    weights: int
    model: nn.Module | None = field(default=None, repr=False)  # the compressed model, plain weights
    kept: dict[str, float] | None = None  # fraction of weights each layer kept after pruning
    allocation: AllocationResult | None = None  # with a recipe's bit allocation
    distill_losses: list[float] | None = None  # with a recipe's distillation: mean loss per epoch

    @property
    def ratio_vs_fp32(self) -> float:
        return 4 * self.parameters / len(self.data)


def compress_model(
    model: nn.Module,
    recipe: CompressionRecipe,
    out: str | os.PathLike | None = None,
    *,
    calibration: CalibrationImages | None = None,
    sensitivity: dict[str, dict[int, float]] | None = None,
    show_progress: bool = False,
) -> CompressionResult:
    """Prune (if the recipe asks), fold BatchNorm, quantize, entropy-code; write the .sqz to ``out`` if given.

    ``calibration`` feeds the recipe's bit allocation and distillation; ``sensitivity`` reuses an
    earlier measurement on the same images. ``model`` itself is not changed; the .sqz header
    carries its class names and preprocessing.
    """
    if recipe.prunes:
        folded, kept = prune_stage(model, recipe)
    else:
        folded, kept = fold_batch_norm(copy.deepcopy(model)), None
    quantized = quantize_stage(folded, recipe, calibration, sensitivity=sensitivity, show_progress=show_progress)
    result = encode_model(quantized.model, quantized.quantizations, recipe, header=model_extras(model))
    if out is not None:
        atomic_write_bytes(out, result.data)
    result.kept, result.allocation, result.distill_losses = kept, quantized.allocation, quantized.distill_losses
    return result


def prune_stage(model: nn.Module, recipe: CompressionRecipe) -> tuple[nn.Module, dict[str, float]]:
    """The pruned, BatchNorm-folded copy of ``model`` and the fraction of weights each layer kept.

    Han et al. 2015b: "all connections with weights below a threshold are removed", then the
    network is retrained with the pruned weights held at zero, and prune-retrain is iterated
    (``recipe.prune_rounds`` rounds on ``prune.sparsity_at``'s ramp). Without ``recipe.retrain`` the
    layers are pruned once.
    """
    if not recipe.prunes:
        raise ValueError("the recipe prunes nothing: give a sparsity or a quality")
    working = copy.deepcopy(model)
    if recipe.batch_norm_strategy == "fold-first":
        working = fold_batch_norm(working)
    if recipe.retrain is None:
        masks = _pruning_masks(working, recipe)
        remove_masks(apply_masks(working, masks))
    else:
        if recipe.sparsity is not None:
            targets = resolve_layer_values(working, recipe.sparsity, float, "sparsity")
        else:
            # The sensitivity rule fixes each layer's sparsity; the rounds then ramp up to it.
            targets = mask_sparsities(_pruning_masks(working, recipe))
        masks = iterative_pruning(working, targets, recipe.retrain, recipe.prune_rounds)
    working = working.to(memory_format=torch.contiguous_format).eval()
    kept = {name: float(mask.float().mean()) for name, mask in masks.items()}
    return fold_batch_norm(working), kept


def _pruning_masks(model: nn.Module, recipe: CompressionRecipe) -> dict[str, torch.Tensor]:
    if recipe.sparsity is not None:
        return magnitude_masks(model, resolve_layer_values(model, recipe.sparsity, float, "sparsity"))
    return sensitivity_masks(model, resolve_layer_values(model, recipe.quality, float, "quality"))


@dataclass
class QuantizedModel:
    model: nn.Module  # plain weights equal to codebook[codes]
    quantizations: dict[str, LayerQuantization]
    allocation: AllocationResult | None = None
    distill_losses: list[float] | None = None


def quantize_stage(
    model: nn.Module,
    recipe: CompressionRecipe,
    calibration: CalibrationImages | None = None,
    *,
    sensitivity: dict[str, dict[int, float]] | None = None,
    show_progress: bool = False,
) -> QuantizedModel:
    """k-means weight sharing per layer (Han et al. 2016 Sec. 3), then the centroid retraining.

    "We use k-means clustering to identify the shared weights for each layer", then "the gradients
    are grouped by the color and summed together" to fine-tune the centroids. Deviation, with
    ``recipe.allocation`` / ``recipe.distillation``: widths allocated by sensitivity and centroids
    distilled from ``model`` on ``calibration`` images instead of retrained on labels.
    ``model`` must be BatchNorm-free; a retraining trains it in place (weights tied to their
    codebooks) and leaves it with plain weights equal to codebook[codes].
    """
    if model.spec.batch_norm:
        raise ValueError("quantize_stage takes a BatchNorm-folded model")
    needs_calibration = recipe.allocation is not None or recipe.distillation is not None
    if needs_calibration and calibration is None:
        raise ValueError("this recipe allocates bits or distills: it needs calibration images")
    allocation = None
    if recipe.allocation is not None:
        allocation = allocate(model, recipe.allocation, calibration, coder=recipe.coder, float16=recipe.float16,
                              sensitivity=sensitivity, show_progress=show_progress)
        bits = allocation.bits
    else:
        bits = resolve_layer_values(model, recipe.bits, int, "bits")
    for name, width in (bits.items() if isinstance(bits, dict) else [("every layer", bits)]):
        if not 1 <= width <= MAX_BITS:
            raise ValueError(f"bit width {width} for {name} is outside the 1..{MAX_BITS} a .sqz file stores")
    quantizations = quantize_model(model, bits, init=recipe.init)
    losses = None
    centroid_stage = recipe.retrain_centroids or recipe.retrain
    if recipe.distillation is not None:
        model, quantizations, losses = distill(model, quantizations, calibration.images, calibration.to_input,
                                               recipe.distillation, crop_size=calibration.crop_size,
                                               show_progress=show_progress)
    elif centroid_stage is not None:
        tie_weights(model, quantizations)
        try:
            centroid_stage(model)
        finally:
            quantizations = untie_weights(model)
        model = model.to(memory_format=torch.contiguous_format).eval()
    if recipe.float16:
        quantizations = round_to_float16(model, quantizations)
    return QuantizedModel(model, quantizations, allocation, losses)


def encode_model(
    model: nn.Module, quantizations: dict[str, LayerQuantization], recipe: CompressionRecipe, *, header: dict | None = None
) -> CompressionResult:
    """The one writer of compressed models: sparse layers at the recipe's gap policy, entropy coded
    into .sqz bytes. ``header`` holds the class names and preprocessing (default: ``model``'s)."""
    if recipe.gap_policy == "paper":
        layers = [to_sparse_layer(quantizations[name], module.bias, paper_max_gap(module))
                  for name, module in weight_layers(model)]
    else:
        layers = encode_layers(model, quantizations, recipe.coder, recipe.gap_candidates)
    widths = [quantizations[name].bits for name, _ in weight_layers(model)]
    header = model_extras(model) if header is None else header
    data, breakdown = encode_sqz(model.spec.to_dict(), layers, widths, recipe.coder, **header)
    nonzero = sum(int(np.count_nonzero(layer.codebook[layer.codes])) for layer in layers)
    return CompressionResult(
        spec=model.spec.to_dict(),
        layers=layers,
        bits=widths,
        coder=recipe.coder,
        quantizations=quantizations,
        data=data,
        breakdown=breakdown,
        parameters=count_parameters(model),
        nonzero_weights=nonzero,
        weights=sum(layer.numel for layer in layers),
        model=model,
    )


def paper_max_gap(module: nn.Module) -> int:
    """The paper's relative-index widths: 4 bits (gap <= 15) for convolutions, 5 bits (<= 31) for fc layers."""
    return 31 if isinstance(module, nn.Linear) else 15


def model_extras(model: nn.Module) -> dict:
    """The class names and input preprocessing a loaded checkpoint carried, for the .sqz header."""
    extras = {}
    if getattr(model, "class_names", None) is not None:
        extras["classes"] = list(model.class_names)
    if getattr(model, "preprocess", None) is not None:
        extras["preprocess"] = model.preprocess
    return extras


def prune_model(
    model: nn.Module, *, sparsity: float | dict[str, float] | None = None, quality: float | dict[str, float] | None = None
) -> nn.Module:
    """A pruned copy of a BN-free ``model`` (one shot, no retraining); layer names as in ``layer_settings``."""
    if sparsity is None and quality is None:
        raise ValueError("give a sparsity or a quality")
    return prune_stage(model, CompressionRecipe(sparsity=sparsity, quality=quality, batch_norm="fold-first"))[0]


def encode_layers(
    model: nn.Module, quantizations: dict[str, LayerQuantization], coder: str, max_gaps: tuple[int, ...] = MAX_GAP_CANDIDATES
) -> list[SparseLayer]:
    """The sparse form of every weight layer, each with the gap width that codes smallest."""
    layers = []
    for name, module in weight_layers(model):
        best, best_bytes = None, None
        for max_gap in max_gaps:
            layer = to_sparse_layer(quantizations[name], module.bias, max_gap)
            size = len(encode_symbols(layer.codes, coder)) + len(encode_symbols(layer.gaps, coder))
            if best_bytes is None or size < best_bytes:
                best, best_bytes = layer, size
            if len(layer.gaps) == 0 or int(layer.gaps.max()) < max_gap:
                break  # no filler entries left: wider gaps change nothing
        layers.append(best)
    return layers
