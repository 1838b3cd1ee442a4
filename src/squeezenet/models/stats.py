"""Size and cost of a model: parameters, non-zero parameters, fp32 bytes and multiply-accumulates."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["count_parameters", "count_nonzero_parameters", "count_macs", "weight_layers"]


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The convolution and linear layers in network order: the unit that compression works on."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_nonzero_parameters(model: nn.Module) -> int:
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_size: int, input_channels: int = 3) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (convolutions and linear layers)."""
    total = 0

    def on_conv(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * per_output

    def on_linear(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(on_linear))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, input_channels, input_size, input_size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return total
