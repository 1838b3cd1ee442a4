"""Magnitude pruning and iterative prune-retrain (Han et al. 2015b, "Learning both Weights and
Connections for Efficient Neural Networks"; Deep Compression, Han et al. 2016, Sec. 2).

The paper: "all connections with weights below a threshold are removed from the network", the
network is retrained, and prune-retrain is iterated. Two rules pick the threshold of each layer:

- a target sparsity (fraction of weights removed), the knob of Table 2's "pruning" rows;
- the sensitivity rule, "the pruning threshold is chosen as a quality parameter multiplied by the
  standard deviation of a layer's weights": ``threshold = quality * std(weight)``.

Pruners only compute masks (``True`` = kept) and return them. ``apply_masks`` holds them on the
module as a ``torch.nn.utils.parametrize`` parametrization, ``weight = original * mask``, so pruned
weights stay exactly zero after every optimizer step: momentum and weight decay keep moving the
stored original, but the mask is applied on every forward pass, so the moved values are never
used. ``sparsity_at`` is the pure schedule of the iterative prune-retrain loop.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.models import weight_layers

__all__ = [
    "magnitude_masks",
    "sensitivity_masks",
    "mask_sparsities",
    "apply_masks",
    "remove_masks",
    "weight_layers_shaped",
    "sparsity_at",
    "iterative_pruning",
    "WeightMask",
]


def magnitude_masks(model: nn.Module, sparsity: float | dict[str, float]) -> dict[str, torch.Tensor]:
    """Per layer, keep all but the ``round(sparsity * numel)`` smallest-magnitude weights.

    ``sparsity`` is one fraction for every layer or a mapping by layer name (``"default"`` for the
    rest; a layer not named and no default is left dense). Weights that are already zero are the
    smallest, so the masks only grow as the sparsity is raised.
    """
    _check_names(model, sparsity)
    masks = {}
    for name, module in weight_layers(model):
        fraction = _setting(sparsity, name, 0.0, "sparsity")
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{name}: sparsity must be in [0, 1), got {fraction}")
        weight = module.weight.detach()
        pruned = round(fraction * weight.numel())
        mask = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
        if pruned:
            # A stable sort breaks ties by position, so the mask is deterministic.
            order = torch.sort(weight.abs().reshape(-1), stable=True).indices
            mask[order[:pruned]] = False
        masks[name] = mask.reshape(weight.shape)
    return masks


def sensitivity_masks(model: nn.Module, quality: float | dict[str, float]) -> dict[str, torch.Tensor]:
    """Han et al.'s rule: keep the weights with ``|w| > quality * std(w)``, per layer.

    ``std`` is taken over all of the layer's weights, zeros included, as in the paper's Caffe code
    and Distiller; ``quality`` is one value or a mapping by layer name (``"default"`` for the rest).
    """
    _check_names(model, quality)
    masks = {}
    for name, module in weight_layers(model):
        factor = _setting(quality, name, 0.0, "quality")
        if factor < 0:
            raise ValueError(f"{name}: quality must be non-negative, got {factor}")
        weight = module.weight.detach()
        threshold = factor * weight.std() if weight.numel() > 1 else torch.zeros(())
        masks[name] = weight.abs() > threshold
    return masks


def mask_sparsities(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of weights each mask removes."""
    return {name: 1.0 - float(mask.float().mean()) for name, mask in masks.items()}


class WeightMask(nn.Module):
    """Parametrization ``weight = original * mask``; the mask is a buffer, never trained."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().clone())

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original * self.mask


def weight_layers_shaped(model: nn.Module, per_layer: dict[str, torch.Tensor], what: str) -> dict[str, nn.Module]:
    """``model``'s weight layers named in ``per_layer``, each checked to have a weight of its tensor's
    shape; ValueError (calling the tensors ``what``) before anything is changed, when one is not."""
    modules = dict(weight_layers(model))
    unknown = sorted(set(per_layer) - set(modules))
    if unknown:
        raise ValueError(f"no weight layer named {', '.join(unknown)}")
    for name, tensor in per_layer.items():
        weight = modules[name].weight
        if tuple(tensor.shape) != tuple(weight.shape):
            raise ValueError(f"{name}: {what} of shape {tuple(tensor.shape)} for a weight of {tuple(weight.shape)}")
    return {name: modules[name] for name in per_layer}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Hold ``masks`` on ``model``'s layers (in place; returns ``model``); a held mask is replaced."""
    modules = weight_layers_shaped(model, masks, "mask")
    for name, mask in masks.items():
        module = modules[name]
        held = _held_mask(module)
        mask = mask.to(device=module.weight.device, dtype=module.weight.dtype)
        if held is not None:
            held.mask.copy_(mask)
        else:
            parametrize.register_parametrization(module, "weight", WeightMask(mask))
    return model


def remove_masks(model: nn.Module) -> nn.Module:
    """Bake the held masks into plain weights (pruned weights become stored zeros); returns ``model``."""
    for _, module in weight_layers(model):
        if _held_mask(module) is not None:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def sparsity_at(step: int, initial_sparsity: float, final_sparsity: float, begin_step: int, end_step: int) -> float:
    """Sparsity to prune to at ``step``: Zhu & Gupta's (2017) cubic ramp from initial to final.

    s(t) = s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0))**3 for t0 <= t <= t1, s_i before, s_f after.
    It prunes fast while many redundant weights remain and slowly near the target. Deviation from
    Han et al., who pick the iteration sizes by hand: a smooth ramp needs one knob, the step count.
    """
    if not 0.0 <= initial_sparsity <= final_sparsity < 1.0:
        raise ValueError(f"need 0 <= initial_sparsity <= final_sparsity < 1, got {initial_sparsity}, {final_sparsity}")
    if end_step < begin_step:
        raise ValueError(f"end_step {end_step} comes before begin_step {begin_step}")
    if step >= end_step:
        return final_sparsity
    if step <= begin_step:
        return initial_sparsity
    remaining = 1.0 - (step - begin_step) / (end_step - begin_step)
    return final_sparsity + (initial_sparsity - final_sparsity) * remaining**3


def iterative_pruning(
    model: nn.Module,
    final_sparsity: float | dict[str, float],
    train_one_epoch: Callable[[nn.Module], object],
    epochs: int,
    *,
    initial_sparsity: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Prune-retrain: before each of ``epochs`` epochs, prune every layer to
    ``sparsity_at(epoch + 1, initial, final, 0, epochs)``, then call ``train_one_epoch(model)`` with
    the masks held. The first epoch already prunes (one epoch prunes straight to the final
    sparsity) and the last trains at the final sparsity. Trains ``model`` in place; returns the
    final masks, which are baked into the weights at the end (``remove_masks``)."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    _check_names(model, final_sparsity)
    names = [name for name, _ in weight_layers(model)]
    finals = {name: _setting(final_sparsity, name, 0.0, "sparsity") for name in names}
    masks: dict[str, torch.Tensor] = {}
    try:
        for epoch in range(epochs):
            targets = {
                name: sparsity_at(epoch + 1, min(initial_sparsity, final), final, 0, epochs)
                for name, final in finals.items()
            }
            masks = magnitude_masks(model, targets)
            apply_masks(model, masks)
            train_one_epoch(model)
    finally:
        remove_masks(model)
    return masks


def _held_mask(module: nn.Module) -> WeightMask | None:
    if not parametrize.is_parametrized(module, "weight"):
        return None
    held = [p for p in module.parametrizations.weight if isinstance(p, WeightMask)]
    return held[0] if held else None


def _check_names(model: nn.Module, value: float | dict[str, float]) -> None:
    if isinstance(value, dict):
        names = {name for name, _ in weight_layers(model)}
        unknown = sorted(set(value) - names - {"default"})
        if unknown:
            raise ValueError(f"no weight layer named {', '.join(unknown)}; layers are {', '.join(sorted(names))}")


def _setting(value: float | dict[str, float], name: str, fallback: float, what: str) -> float:
    if isinstance(value, dict):
        return float(value.get(name, value.get("default", fallback)))
    if isinstance(value, (int, float)):
        return float(value)
    raise ValueError(f"{what} must be a number or a mapping by layer name, got {type(value).__name__}")
