"""What Table 2 needs around the Deep Compression pipeline (``squeezenet.compress.pipeline``, Han et al. 2016).

The stages themselves (prune, retrain, quantize, retrain centroids, entropy-code into a ``.sqz``)
are ``pipeline.prune_stage``, ``quantize_stage`` and ``encode_model``, run with Table 2's recipe:
per-role sparsity and bits (``layer_settings.values_by_role``), BatchNorm in place while pruning,
and the paper's fixed relative-index widths (``gap_policy="paper"``). This module keeps the rest:
``restore_batch_norm`` (the BatchNorm form of a folded model) and the two size/sparsity counts.

Deviations from Han et al.: they iterate prune-retrain several times; the schedules here prune once
to the target sparsity and retrain (``Schedule.prune_epochs``). And pruning and its retraining run
with BatchNorm (``restore_batch_norm``), which is folded again before quantization: measured on the
short schedule's SqueezeNet-CIFAR, pruning the folded, BN-free network to 33% density left it at
chance (10% top-1; its last ReLU outputs only zeros) and retraining without BatchNorm never left
that state (loss stuck at ln 10), while the network with BatchNorm renormalises and recovers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from squeezenet.compress.pipeline import paper_max_gap
from squeezenet.models import model_from_spec, weight_layers

__all__ = ["restore_batch_norm", "sparse_fp32_bytes", "nonzero_fraction"]


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


def sparse_fp32_bytes(model: nn.Module) -> int:
    """Bytes of a pruned model stored as Han et al. 2015b count it: every stored entry a float32 value
    plus its relative index (4 bits in convolutions, 5 in fc layers; zero runs longer than the
    largest gap need filler entries), and the float32 biases."""
    total_bits = 0
    for _, module in weight_layers(model):
        flat = module.weight.detach().reshape(-1).cpu().numpy()
        positions = np.flatnonzero(flat)
        gaps = np.diff(np.concatenate([[-1], positions])) - 1
        max_gap = paper_max_gap(module)
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
