"""Deep Compression of a trained model in one call: prune -> quantize -> entropy-code -> .sqz.

Han et al. 2016's three stages, each in its own module (``prune``, ``quantize``, ``entropy``),
chained here. Retraining between the stages is the caller's ``retrain(model)`` (the trainer lives
in ``squeezenet.train``): after pruning, with the masks held, and after quantization, with the
weights tied to their codebooks so that only the centroids (and biases) learn. Layers are named either by module name
(``features.0``) or by the paper's names (``conv1``, ``fire2/squeeze1x1``, ``fire2/expand3x3``,
``conv10``; AlexNet ``conv1``-``conv5``, ``fc6``-``fc8``); a prefix such as ``fire2`` names all of
a Fire module's layers.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from torch import nn

from squeezenet.compress.entropy import CODERS, encode_symbols
from squeezenet.compress.prune import (
    apply_masks,
    iterative_pruning,
    magnitude_masks,
    mask_sparsities,
    remove_masks,
    sensitivity_masks,
)
from squeezenet.compress.quantize import LayerQuantization, quantize_model, tie_weights, to_sparse_layer, untie_weights
from squeezenet.compress.sparse import SparseLayer
from squeezenet.compress.sqz import MAX_BITS, encode_sqz
from squeezenet.models import Fire, count_parameters, fold_batch_norm, weight_layers
from squeezenet.safe_io import atomic_write_bytes

__all__ = [
    "CompressionSettings",
    "CompressionResult",
    "compress_model",
    "encode_layers",
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


@dataclass(frozen=True)
class CompressionSettings:
    """What to do to each weight layer. Per-layer values are a number or a mapping by layer name
    (module or paper name, ``"default"`` for the rest)."""

    bits: int | dict[str, int] = 8
    coder: str = "ans"  # "ans", "huffman" or "fixed"
    sparsity: float | dict[str, float] | None = None  # prune to this fraction of zeros first
    quality: float | dict[str, float] | None = None  # or Han et al.'s threshold = quality * std(w)
    init: str = "linear"  # k-means initialisation
    max_gaps: tuple[int, ...] = MAX_GAP_CANDIDATES
    prune_rounds: int = 1  # with retraining: prune-retrain rounds on the way to the final sparsity


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

    @property
    def ratio_vs_fp32(self) -> float:
        return 4 * self.parameters / len(self.data)


def compress_model(
    model: nn.Module,
    settings: CompressionSettings,
    out: str | os.PathLike | None = None,
    *,
    retrain: Callable[[nn.Module], object] | None = None,
    retrain_centroids: Callable[[nn.Module], object] | None = None,
) -> CompressionResult:
    """Prune (if asked), fold BatchNorm, quantize, entropy-code; write the .sqz to ``out`` if given.

    With ``retrain``, it is called after each pruning round (masks held, BatchNorm still in the
    model) and once after quantization (BatchNorm folded, weights tied to trainable centroids).
    ``retrain_centroids``, if given, replaces ``retrain`` for that last stage: the folded network has
    no BatchNorm to absorb large steps, so it usually wants a smaller learning rate.
    ``model`` itself is not changed.
    """
    if settings.coder not in CODERS:
        raise ValueError(f"unknown coder {settings.coder!r}; choose from {', '.join(CODERS)}")
    if settings.sparsity is not None and settings.quality is not None:
        raise ValueError("give a target sparsity or a sensitivity quality, not both")
    if settings.prune_rounds < 1:
        raise ValueError(f"prune_rounds must be at least 1, got {settings.prune_rounds}")
    pruning = settings.sparsity is not None or settings.quality is not None
    if pruning and retrain is None:
        folded = prune_model(fold_batch_norm(copy.deepcopy(model)), sparsity=settings.sparsity, quality=settings.quality)
    elif pruning:
        # Prune and retrain with BatchNorm still in place, then fold: retraining a folded,
        # BN-free SqueezeNet after pruning left it at chance (measured on CIFAR-10), while
        # BatchNorm renormalises the pruned layers and the network recovers.
        working = copy.deepcopy(model)
        if settings.sparsity is not None:
            targets = resolve_layer_values(working, settings.sparsity, float, "sparsity")
        else:
            # The sensitivity rule fixes each layer's sparsity; the rounds then ramp up to it.
            targets = mask_sparsities(sensitivity_masks(working, resolve_layer_values(working, settings.quality, float, "quality")))
        iterative_pruning(working, targets, retrain, settings.prune_rounds)
        working.eval()
        folded = fold_batch_norm(working)
    else:
        folded = fold_batch_norm(copy.deepcopy(model))
    bits = resolve_layer_values(folded, settings.bits, int, "bits")
    for name, width in (bits.items() if isinstance(bits, dict) else [("every layer", bits)]):
        if not 1 <= width <= MAX_BITS:
            raise ValueError(f"bit width {width} for {name} is outside the 1..{MAX_BITS} a .sqz file stores")
    quantizations = quantize_model(folded, bits, init=settings.init)
    centroid_stage = retrain_centroids or retrain
    if centroid_stage is not None:
        tie_weights(folded, quantizations)
        try:
            centroid_stage(folded)
        finally:
            quantizations = untie_weights(folded)
        folded.eval()
    layers = encode_layers(folded, quantizations, settings.coder, settings.max_gaps)
    widths = [quantizations[name].bits for name, _ in weight_layers(folded)]
    # fold_batch_norm builds a new model: names and preprocessing come from the caller's model.
    data, breakdown = encode_sqz(folded.spec.to_dict(), layers, widths, settings.coder, **model_extras(model))
    if out is not None:
        atomic_write_bytes(out, data)
    nonzero = sum(int(np.count_nonzero(layer.codebook[layer.codes])) for layer in layers)
    return CompressionResult(
        spec=folded.spec.to_dict(),
        layers=layers,
        bits=widths,
        coder=settings.coder,
        quantizations=quantizations,
        data=data,
        breakdown=breakdown,
        parameters=count_parameters(folded),
        nonzero_weights=nonzero,
        weights=sum(layer.numel for layer in layers),
    )


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
    """A pruned copy of a BN-free ``model`` (one shot, no retraining); layer names as in this module."""
    pruned = copy.deepcopy(model)
    if sparsity is not None:
        masks = magnitude_masks(pruned, resolve_layer_values(pruned, sparsity, float, "sparsity"))
    elif quality is not None:
        masks = sensitivity_masks(pruned, resolve_layer_values(pruned, quality, float, "quality"))
    else:
        raise ValueError("give a sparsity or a quality")
    return remove_masks(apply_masks(pruned, masks))


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


def layer_aliases(model: nn.Module) -> dict[str, str]:
    """Paper name of every weight layer, keyed by module name (``features.0`` -> ``conv1``)."""
    family = getattr(getattr(model, "spec", None), "family", None)
    fires = {name: index + 2 for index, (name, _) in enumerate((n, m) for n, m in model.named_modules() if isinstance(m, Fire))}
    suffixes = {"squeeze": "squeeze1x1", "expand1x1": "expand1x1", "expand3x3": "expand3x3", "bypass": "bypass"}
    aliases = {}
    convs = linears = 0
    for name, module in weight_layers(model):
        parent, _, child = name.rpartition(".")
        if parent in fires and child in suffixes:
            aliases[name] = f"fire{fires[parent]}/{suffixes[child]}"
        elif isinstance(module, nn.Conv2d):
            convs += 1
            # SqueezeNet's classifier convolution is conv10 in the paper, whatever the Fire count.
            aliases[name] = "conv10" if family == "squeezenet" and name.startswith("classifier") else f"conv{convs}"
        else:
            linears += 1
            aliases[name] = f"fc{5 + linears}" if family == "alexnet" else f"fc{linears}"
    return aliases


def parse_layer_values(text: str, cast=float) -> float | dict[str, float]:
    """``"6"`` -> 6; ``"conv1=8,fire9=7,default=6"`` -> {"conv1": 8, "fire9": 7, "default": 6}."""
    text = text.strip()
    if not text:
        raise ValueError("empty per-layer setting")
    if "=" not in text:
        return _cast(cast, text, text)
    values = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"bad per-layer setting {item!r}; expected NAME=VALUE (e.g. conv1=8,default=6)")
        values[key.strip()] = _cast(cast, value.strip(), item)
    return values


def resolve_layer_values(model: nn.Module, values, cast=float, what: str = "value"):
    """Map paper names and prefixes to module names; a plain number is returned as is.

    An exact name beats a prefix; a layer matched by nothing takes ``"default"`` (or is left out).
    """
    if not isinstance(values, dict):
        return cast(values)
    aliases = layer_aliases(model)
    resolved = {}
    used = set()
    for name, alias in aliases.items():
        for key in (name, alias):
            if key in values:
                resolved[name] = cast(values[key])
                used.add(key)
                break
        else:
            prefixes = [key for key in values if key != "default" and (alias.startswith(key + "/") or name.startswith(key + "."))]
            if prefixes:
                key = max(prefixes, key=len)
                resolved[name] = cast(values[key])
                used.add(key)
    unknown = sorted(set(values) - used - {"default"})
    if unknown:
        raise ValueError(f"no weight layer named {', '.join(unknown)} for {what}; layers are "
                         f"{', '.join(aliases.values())}")
    if "default" in values:
        resolved["default"] = cast(values["default"])
    return resolved


def _cast(cast, value: str, item: str):
    try:
        return cast(value)
    except ValueError:
        raise ValueError(f"bad value in per-layer setting {item!r}") from None
