"""Low-rank factorisation, the SVD baseline of SqueezeNet's Table 2 (Denton et al. 2014).

A weight matrix W (out x in) is replaced by its truncated SVD, W ~ (U_k S_k)(V_k^T): two layers
with k * (out + in) weights instead of out * in. A convolution's weight [out, in, kh, kw] is the
matrix [out, in * kh * kw]; its factors become a k-channel convolution with the original kernel,
stride and padding, followed by a 1x1 convolution that carries the bias. The knob is the rank k,
or the ``energy``: the smallest k whose singular values keep that fraction of sum(s**2).

Deviation from Denton et al.: they also cluster filters and use bi-clustered tensor
approximations and fine-tune; this is the plain per-layer SVD, and a layer is left dense when its
factors would not be smaller.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from squeezenet.models import weight_layers

__all__ = ["LowRankFactors", "low_rank_factors", "factorize_model", "fp32_bytes"]


@dataclass
class LowRankFactors:
    """``weight_matrix ~ second @ first``: first [rank, in * kh * kw], second [out, rank]."""

    first: torch.Tensor
    second: torch.Tensor

    @property
    def rank(self) -> int:
        return self.first.shape[0]


def low_rank_factors(weight: torch.Tensor, *, rank: int | None = None, energy: float | None = None) -> LowRankFactors:
    """The truncated SVD of ``weight`` (as a matrix), at ``rank`` or at the rank that keeps ``energy``."""
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank and energy")
    matrix = weight.detach().reshape(weight.shape[0], -1).to(torch.float32)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    if energy is not None:
        if not 0.0 < energy <= 1.0:
            raise ValueError(f"energy must be in (0, 1], got {energy}")
        kept = torch.cumsum(s**2, 0) / torch.sum(s**2).clamp_min(1e-300)
        rank = int(torch.searchsorted(kept, torch.tensor(energy, dtype=kept.dtype) - 1e-12)) + 1
    if rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}")
    rank = min(rank, len(s))
    # Split the singular values evenly between the factors so both have a similar scale.
    root = torch.sqrt(s[:rank])
    first = (root[:, None] * vh[:rank]).to(weight.dtype)
    second = (u[:, :rank] * root[None, :]).to(weight.dtype)
    return LowRankFactors(first, second)


def factorize_model(
    model: nn.Module,
    *,
    rank: int | dict[str, int] | None = None,
    energy: float | dict[str, float] | None = None,
    layers: list[str] | None = None,
) -> tuple[nn.Module, dict[str, int]]:
    """A copy of ``model`` with the chosen layers (default: all) replaced by their two-layer factors.

    Returns (model, rank per factorised layer). The copy keeps ``model.spec`` for its input size
    and class count, but its layers no longer match the spec: save it as a checkpoint, not a .sqz.
    """
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank and energy")
    result = copy.deepcopy(model).eval()
    names = [name for name, _ in weight_layers(result)]
    chosen = names if layers is None else list(layers)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"no weight layer named {', '.join(unknown)}")
    ranks = {}
    modules = dict(weight_layers(result))
    for name in chosen:
        module = modules[name]
        knob = rank if rank is not None else energy
        value = knob.get(name, knob.get("default")) if isinstance(knob, dict) else knob
        if value is None:
            continue
        factors = low_rank_factors(module.weight, **({"rank": int(value)} if rank is not None else {"energy": float(value)}))
        out_features, in_features = module.weight.shape[0], module.weight[0].numel()
        if factors.rank * (out_features + in_features) >= out_features * in_features:
            continue  # factors would be no smaller: keep the layer dense
        _replace(result, name, _factorized(module, factors))
        ranks[name] = factors.rank
    return result, ranks


def fp32_bytes(model: nn.Module) -> int:
    """Bytes of all parameters stored as float32, the size Table 2 reports for the SVD baseline."""
    return 4 * sum(parameter.numel() for parameter in model.parameters())


def _factorized(module: nn.Module, factors: LowRankFactors) -> nn.Sequential:
    has_bias = module.bias is not None
    if isinstance(module, nn.Linear):
        first = nn.Linear(module.in_features, factors.rank, bias=False)
        second = nn.Linear(factors.rank, module.out_features, bias=has_bias)
        first.weight.data.copy_(factors.first)
        second.weight.data.copy_(factors.second)
    elif isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise ValueError("grouped convolutions are not factorised")
        first = nn.Conv2d(module.in_channels, factors.rank, module.kernel_size, module.stride, module.padding,
                          module.dilation, bias=False)
        second = nn.Conv2d(factors.rank, module.out_channels, 1, bias=has_bias)
        first.weight.data.copy_(factors.first.reshape(factors.rank, *module.weight.shape[1:]))
        second.weight.data.copy_(factors.second.reshape(module.out_channels, factors.rank, 1, 1))
    else:
        raise ValueError(f"cannot factorise a {type(module).__name__}")
    if has_bias:
        second.bias.data.copy_(module.bias.detach())
    return nn.Sequential(first, second)


def _replace(model: nn.Module, name: str, replacement: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, replacement)
