"""The Deep Compression stages applied to a trained, BatchNorm-folded model (Han et al. 2016).

1. prune (Han et al. 2015b): per-layer magnitude masks, then retrain with the masks held;
2. trained quantization: per-layer k-means codebooks (linear initialisation, code 0 = 0.0), then
   retrain the shared centroids (the gradients of the weights sharing a centroid are summed);
3. entropy coding of the sparse relative-index form into a ``.sqz`` file (Huffman as in the paper,
   or rANS).

Deviations from Han et al.: they iterate prune-retrain several times; the schedules here prune once
to the target sparsity and retrain (``Schedule.prune_epochs``). And pruning and its retraining run
with BatchNorm (``restore_batch_norm``), which is folded again before quantization: measured on the
short schedule's SqueezeNet-CIFAR, pruning the folded, BN-free network to 33% density left it at
chance (10% top-1; its last ReLU outputs only zeros) and retraining without BatchNorm never left
that state (loss stuck at ln 10), while the network with BatchNorm renormalises and recovers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from squeezenet.compress.prune import apply_masks, magnitude_masks, remove_masks
from squeezenet.compress.quantize import quantize_model, tie_weights, to_sparse_layer, untie_weights
from squeezenet.compress.sqz import write_sqz
from squeezenet.models import model_from_spec, weight_layers

__all__ = ["restore_batch_norm", "layer_settings", "prune_and_retrain", "quantize_and_retrain", "write_compressed", "sparse_fp32_bytes",
           "max_gap_for", "nonzero_fraction"]


def layer_settings(model: nn.Module, *, first: float | int, hidden_conv: float | int, hidden_linear: float | int,
                   last: float | int) -> dict[str, float | int]:
    """One value per weight layer by its role: the first layer, the last, and the convolutions and
    fully connected layers between (Han et al. prune and quantize conv and fc layers differently)."""
    layers = weight_layers(model)
    settings = {}
    for index, (name, module) in enumerate(layers):
        if index == 0:
            settings[name] = first
        elif index == len(layers) - 1:
            settings[name] = last
        else:
            settings[name] = hidden_linear if isinstance(module, nn.Linear) else hidden_conv
    return settings


@torch.no_grad()
def restore_batch_norm(folded: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """The BatchNorm form of a folded model that computes the same function, ready to retrain.

    Every convolution keeps its folded weight; its BatchNorm gets the statistics (mean, variance)
    of that convolution's output on ``inputs`` as running statistics, scale sqrt(var + eps) and
    shift mean + the folded bias, so that in eval mode y = x + bias exactly, and in train mode on
    batches like ``inputs`` nearly so. Layers without BatchNorm keep their weight and bias.
    """
    spec = folded.spec
    if spec.batch_norm:
        raise ValueError("the model still has BatchNorm; restore_batch_norm takes a folded model")
    model = model_from_spec(replace(spec, batch_norm=True).to_dict())
    pairs: list[list] = []  # [layer, its BatchNorm or None], in network order
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            pairs.append([module, None])
        elif isinstance(module, nn.BatchNorm2d):
            pairs[-1][1] = module
    sources = weight_layers(folded)
    assert len(pairs) == len(sources), "BatchNorm changed the number of weight layers"
    for (layer, norm), (_, source) in zip(pairs, sources):
        layer.weight.copy_(source.weight)
        if norm is None:
            layer.bias.copy_(source.bias)
            continue
        if layer.bias is not None:
            layer.bias.zero_()
        # First an identity BatchNorm carrying the bias: the model now equals the folded one.
        norm.weight.fill_(1.0)
        norm.bias.copy_(source.bias)
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0 - norm.eps)
    statistics = {}

    def record(module, arguments, _output):
        values = arguments[0].float()
        statistics[module] = (values.mean(dim=(0, 2, 3)), values.var(dim=(0, 2, 3), unbiased=False))

    hooks = [norm.register_forward_hook(record) for _, norm in pairs if norm is not None]
    try:
        model.eval()(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    for norm, (mean, variance) in statistics.items():
        shift = norm.bias.clone()
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(variance)
        norm.weight.copy_(torch.sqrt(variance + norm.eps))
        norm.bias.copy_(mean + shift)
    return model


def prune_and_retrain(model: nn.Module, sparsity: dict[str, float], retrain) -> dict[str, float]:
    """Prune every layer to its target sparsity, ``retrain(model)`` with the masks held, bake them in.
    Returns the fraction of weights kept per layer."""
    masks = magnitude_masks(model, sparsity)
    apply_masks(model, masks)
    retrain(model)
    remove_masks(model)
    return {name: float(mask.float().mean()) for name, mask in masks.items()}


def quantize_and_retrain(model: nn.Module, bits: dict[str, int], retrain) -> dict:
    """k-means weight sharing per layer, ``retrain(model)`` with the weights tied to their codebooks;
    leaves ``model`` with plain weights equal to codebook[codes] and returns the quantizations."""
    tie_weights(model, quantize_model(model, bits))
    retrain(model)
    return untie_weights(model)


def max_gap_for(module: nn.Module) -> int:
    """The paper's relative-index widths: 4 bits (gap <= 15) for convolutions, 5 bits (<= 31) for fc layers."""
    return 31 if isinstance(module, nn.Linear) else 15


def write_compressed(path: Path, model: nn.Module, quantizations: dict, bits: dict[str, int], coder: str, *,
                     classes: list[str] | None = None, preprocess: str | None = None) -> dict:
    """Write the quantized ``model`` as a .sqz file, with the class names and input preprocessing that
    ``squeezenet predict`` / ``evaluate`` read from its header; returns its exact byte breakdown."""
    layers, widths = [], []
    for name, module in weight_layers(model):
        layers.append(to_sparse_layer(quantizations[name], module.bias, max_gap_for(module)))
        widths.append(bits[name])
    return write_sqz(path, model.spec.to_dict(), layers, widths, coder, classes=classes, preprocess=preprocess)


def sparse_fp32_bytes(model: nn.Module) -> int:
    """Bytes of a pruned model stored as Han et al. 2015b count it: every stored entry a float32 value
    plus its relative index (4 bits in convolutions, 5 in fc layers; zero runs longer than the
    largest gap need filler entries), and the float32 biases."""
    total_bits = 0
    for _, module in weight_layers(model):
        flat = module.weight.detach().reshape(-1).cpu().numpy()
        positions = np.flatnonzero(flat)
        gaps = np.diff(np.concatenate([[-1], positions])) - 1
        max_gap = max_gap_for(module)
        entries = len(positions) + int(np.sum(gaps // (max_gap + 1)))
        index_bits = int(np.log2(max_gap + 1))
        total_bits += entries * (32 + index_bits)
        if module.bias is not None:
            total_bits += 32 * module.bias.numel()
    return (total_bits + 7) // 8


@torch.no_grad()
def nonzero_fraction(model: nn.Module) -> float:
    weights = [module.weight for _, module in weight_layers(model)]
    return sum(int(torch.count_nonzero(w)) for w in weights) / sum(w.numel() for w in weights)
