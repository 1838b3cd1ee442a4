"""Fold BatchNorm into the convolution before it, for compression and export.

y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta is again a convolution with
w' = w * gamma / sqrt(var + eps) and b' = (b - mean) * gamma / sqrt(var + eps) + beta.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

__all__ = ["fold_batch_norm"]


@torch.no_grad()
def fold_batch_norm(model: nn.Module) -> nn.Module:
    """Return an equivalent model (in eval mode) built from the same spec with ``batch_norm=False``.

    Relies on the layout of our models: every BatchNorm2d is registered right after the
    convolution it normalises, and removing BatchNorm keeps the order of the weight layers.
    """
    from squeezenet.models import model_from_spec

    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("fold_batch_norm needs a model built by squeezenet.models")
    if not spec.batch_norm:
        return model.eval()
    folded_layers: list[tuple[torch.Tensor, torch.Tensor]] = []
    last_conv: nn.Conv2d | None = None
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            bias = module.bias if module.bias is not None else torch.zeros(module.weight.shape[0])
            folded_layers.append((module.weight.detach().clone(), bias.detach().clone()))
            last_conv = module if isinstance(module, nn.Conv2d) else None
        elif isinstance(module, nn.BatchNorm2d):
            if last_conv is None:
                raise ValueError("BatchNorm2d without a convolution before it")
            weight, bias = folded_layers[-1]
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            folded_layers[-1] = (
                weight * scale.reshape(-1, *([1] * (weight.dim() - 1))),
                (bias - module.running_mean) * scale + module.bias,
            )
            last_conv = None
    plain = model_from_spec(replace(spec, batch_norm=False).to_dict())
    targets = [m for m in plain.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(targets) == len(folded_layers), "folding changed the number of weight layers"
    for target, (weight, bias) in zip(targets, folded_layers):
        target.weight.copy_(weight)
        target.bias.copy_(bias)
    return plain.eval()
