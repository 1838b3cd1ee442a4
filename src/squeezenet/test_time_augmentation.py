"""Test-time augmentation: score a batch together with mirrored and shifted copies of it.

The copies are the ones the training augmentation makes (left-right flips, small translations),
so the model has seen their like; summing their logits averages away some of its errors.
``shift`` follows the 2-pixel translation of Jordan's CIFAR-10 speed runs ("airbench", 2024): the
unshifted image weighs 1/2 and copies moved up-left and down-right by ``shift`` pixels (reflect
padding at the borders) weigh 1/4 each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["augmented_logits"]


def augmented_logits(model: nn.Module, inputs: torch.Tensor, *, flip: bool = False, shift: int = 0) -> torch.Tensor:
    """float32 logits of ``inputs`` (NCHW), summed over the augmented views (a weighted sum with ``shift``).

    Forward passes per image: 1, 2 with ``flip``, 3 with ``shift``, 6 with both."""
    if shift < 0:
        raise ValueError(f"shift must be at least 0 pixels, got {shift}")
    height, width = inputs.shape[2:]
    if shift and (shift >= height or shift >= width):
        raise ValueError(f"a shift of {shift} pixels needs an input larger than {height}x{width}")
    channels_last = inputs.is_contiguous(memory_format=torch.channels_last) and not inputs.is_contiguous()
    logits = None
    for view in (inputs, inputs.flip(3)) if flip else (inputs,):
        view_logits = model(view).float()
        if shift:
            padded = F.pad(view, (shift, shift, shift, shift), mode="reflect")
            for window in (padded[:, :, :height, :width], padded[:, :, 2 * shift:, 2 * shift:]):
                window = window.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
                view_logits = view_logits + 0.5 * model(window).float()
        logits = view_logits if logits is None else logits + view_logits
    return logits
