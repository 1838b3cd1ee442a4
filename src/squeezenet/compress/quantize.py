"""Trained quantization: weight sharing by k-means, then fine-tuning of the shared centroids.

Han et al. 2016, Sec. 3: "We use k-means clustering to identify the shared weights for each layer
of a trained network, so that all the weights that fall into the same cluster will share the same
weight." Centroids are initialised linearly over [min, max] of the layer's weights (the paper's
best choice, Sec. 3.2). During fine-tuning "the gradients are grouped by the color and summed
together, multiplied by the learning rate and subtracted from the shared centroids" (Sec. 3.3,
Figure 3): with ``weight = codebook[codes]`` as a parametrization, autograd's gather backward is
exactly that sum, so any optimizer applies the paper's rule.

Where we deviate: code 0 is reserved for the value 0.0, so pruned weights stay exactly zero and a
``bits``-bit layer has at most ``2**bits - 1`` trained centroids (the published .net files do the
same: codebook[0] is 0.0); k-means runs over the non-zero weights only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress.kmeans import INITIALISATIONS, kmeans_1d
from squeezenet.compress.prune import weight_layers_shaped
from squeezenet.compress.sparse import SparseLayer
from squeezenet.models import weight_layers

__all__ = [
    "LayerQuantization",
    "SharedWeight",
    "quantize_layer",
    "quantize_model",
    "tie_weights",
    "untie_weights",
    "to_sparse_layer",
    "layer_bits",
    "round_to_float16",
]

# The widest codes k-means here computes; a .sqz file stores at most sqz.MAX_BITS (12).
MAX_QUANTIZATION_BITS = 16


@dataclass
class LayerQuantization:
    """One layer's shared weights: ``weight == codebook[codes]``."""

    codebook: torch.Tensor  # float32[k], k <= 2**bits, codebook[0] == 0.0 (zero and pruned weights)
    codes: torch.Tensor  # int64 with the weight's shape; 0 marks a zero weight
    bits: int  # the code width the layer is stored with

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= MAX_QUANTIZATION_BITS:
            raise ValueError(f"bits must be in 1..{MAX_QUANTIZATION_BITS}, got {self.bits}")
        if self.codebook.ndim != 1 or not 1 <= len(self.codebook) <= 2**self.bits:
            raise ValueError(f"a {self.bits}-bit codebook holds 1..{2**self.bits} entries, got {tuple(self.codebook.shape)}")
        if float(self.codebook[0]) != 0.0:
            raise ValueError(f"codebook[0] must be 0.0 (the zero code), got {float(self.codebook[0])}")
        if self.codes.dtype != torch.int64:
            raise ValueError(f"codes must be int64, got {self.codes.dtype}")
        if self.codes.numel() and (int(self.codes.min()) < 0 or int(self.codes.max()) >= len(self.codebook)):
            raise ValueError(f"codes must lie in 0..{len(self.codebook) - 1}")

    def weight(self) -> torch.Tensor:
        return self.codebook[self.codes]


def quantize_layer(weight: torch.Tensor, bits: int, *, init: str = "linear") -> LayerQuantization:
    """k-means over the non-zero weights into ``2**bits - 1`` centroids; zeros keep code 0.

    Each non-zero weight takes its nearest centroid (codes 1..k-1); code 0 is never given to a
    non-zero weight, so the sparsity pattern is kept exactly.
    """
    if not 1 <= bits <= MAX_QUANTIZATION_BITS:
        raise ValueError(f"bits must be in 1..{MAX_QUANTIZATION_BITS}, got {bits}")
    if init not in INITIALISATIONS:
        raise ValueError(f"unknown k-means initialisation {init!r}; choose from {', '.join(INITIALISATIONS)}")
    values = weight.detach().cpu().to(torch.float32)
    flat = values.reshape(-1).numpy()
    nonzero = flat != 0
    codes = np.zeros(flat.shape, dtype=np.int64)
    if nonzero.any():
        centroids = kmeans_1d(flat[nonzero], 2**bits - 1, init=init)
        # Nearest centroid by the midpoints between sorted centroids.
        codes[nonzero] = 1 + np.searchsorted((centroids[1:] + centroids[:-1]) / 2, flat[nonzero])
    else:
        centroids = np.zeros(0, dtype=np.float32)
    codebook = torch.from_numpy(np.concatenate([[0.0], centroids]).astype(np.float32))
    return LayerQuantization(codebook, torch.from_numpy(codes).reshape(values.shape), bits)


def layer_bits(model: nn.Module, bits: int | dict[str, int]) -> dict[str, int]:
    """Bits for every weight layer: one width for all, or a mapping by layer name (key "default" for the rest)."""
    names = [name for name, _ in weight_layers(model)]
    if isinstance(bits, int):
        return {name: bits for name in names}
    unknown = sorted(set(bits) - set(names) - {"default"})
    if unknown:
        raise ValueError(f"no weight layer named {', '.join(unknown)}; layers are {', '.join(names)}")
    missing = [name for name in names if name not in bits]
    if missing and "default" not in bits:
        raise ValueError(f"no bits given for {', '.join(missing)} (add a 'default')")
    return {name: int(bits.get(name, bits.get("default", 0))) for name in names}


def quantize_model(
    model: nn.Module, bits: int | dict[str, int], *, init: str = "linear"
) -> dict[str, LayerQuantization]:
    """Quantize every weight layer (``squeezenet.models.weight_layers`` names); the model is not changed."""
    widths = layer_bits(model, bits)
    return {name: quantize_layer(module.weight, widths[name], init=init) for name, module in weight_layers(model)}


class SharedWeight(nn.Module):
    """Parametrization ``weight = codebook[codes]`` with a trainable codebook whose entry 0 stays 0.0.

    The zero entry is masked in the forward pass, so it receives no gradient and pruned weights
    (code 0) stay exactly zero whatever the optimizer does to the stored parameter.
    """

    def __init__(self, quantization: LayerQuantization) -> None:
        super().__init__()
        self.bits = quantization.bits
        self.codebook = nn.Parameter(quantization.codebook.detach().clone().to(torch.float32))
        self.register_buffer("codes", quantization.codes.detach().clone())
        mask = torch.ones_like(self.codebook)
        mask[0] = 0.0
        self.register_buffer("keep", mask)

    def forward(self, _original: torch.Tensor) -> torch.Tensor:
        return (self.codebook * self.keep)[self.codes]

    def quantization(self) -> LayerQuantization:
        codebook = (self.codebook * self.keep).detach().clone()
        return LayerQuantization(codebook, self.codes.clone(), self.bits)


def tie_weights(model: nn.Module, quantizations: dict[str, LayerQuantization]) -> nn.Module:
    """Make each named layer's weight ``codebook[codes]`` (in place; returns ``model``).

    Afterwards the trainable parameters of those layers are their codebooks (``...parametrizations.
    weight[0].codebook``) and biases; the original dense weight is kept by torch's parametrize but
    frozen. Call ``untie_weights`` to get plain weights back.
    """
    codes = {name: quantization.codes for name, quantization in quantizations.items()}
    modules = weight_layers_shaped(model, codes, "codes")
    for name, quantization in quantizations.items():
        module = modules[name]
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"{name}: weight is already parametrized")
        shared = SharedWeight(quantization).to(module.weight.device)
        parametrize.register_parametrization(module, "weight", shared)
        module.parametrizations.weight.original.requires_grad_(False)
    return model


def untie_weights(model: nn.Module) -> dict[str, LayerQuantization]:
    """Remove the shared-weight parametrizations, leaving plain weights equal to ``codebook[codes]``.

    Returns the layers' final quantizations (trained codebooks and their codes).
    """
    result = {}
    for name, module in weight_layers(model):
        if not parametrize.is_parametrized(module, "weight"):
            continue
        shared = [p for p in module.parametrizations.weight if isinstance(p, SharedWeight)]
        if not shared:
            continue
        result[name] = shared[0].quantization()
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        module.weight.requires_grad_(True)
    return result


def to_sparse_layer(quantization: LayerQuantization, bias: torch.Tensor | np.ndarray | None, max_gap: int) -> SparseLayer:
    """The sparse relative-index form (codes and gaps) of a quantized layer, for the file writers."""
    if max_gap < 1:
        raise ValueError(f"max_gap must be at least 1, got {max_gap}")
    weight = quantization.weight().detach().cpu().numpy().astype(np.float32)
    if bias is None:
        bias = np.zeros(weight.shape[0], dtype=np.float32)
    elif isinstance(bias, torch.Tensor):
        bias = bias.detach().cpu().numpy()
    codebook = quantization.codebook.detach().cpu().numpy().astype(np.float32)
    return SparseLayer.from_dense(weight, np.asarray(bias, dtype=np.float32), codebook, max_gap=max_gap)


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
