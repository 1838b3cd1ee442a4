"""Model zoo: every architecture by name, and rebuilding a model from its spec."""

from __future__ import annotations

from typing import Callable

from torch import nn

from squeezenet.architecture import spec_from_dict
from squeezenet.models.alexnet import AlexNet, AlexNetSpec, alexnet, alexnet_cifar
from squeezenet.models.batch_norm import fold_batch_norm
from squeezenet.models.from_layers import model_from_layers
from squeezenet.models.squeezenet import (
    BYPASS_KINDS,
    Fire,
    FireSpec,
    SqueezeNet,
    SqueezeNetSpec,
    fire_rows_from_metaparameters,
    squeezenet1_0,
    squeezenet1_1,
    squeezenet_cifar,
    with_bypass,
)
from squeezenet.models.stats import count_macs, count_nonzero_parameters, count_parameters, weight_layers

__all__ = [
    "ARCHITECTURES",
    "AlexNet",
    "AlexNetSpec",
    "BYPASS_KINDS",
    "Fire",
    "FireSpec",
    "SqueezeNet",
    "SqueezeNetSpec",
    "alexnet",
    "alexnet_cifar",
    "build_model",
    "count_macs",
    "count_nonzero_parameters",
    "count_parameters",
    "fire_rows_from_metaparameters",
    "fold_batch_norm",
    "model_from_layers",
    "model_from_spec",
    "squeezenet1_0",
    "squeezenet1_1",
    "squeezenet_cifar",
    "weight_layers",
    "with_bypass",
]

# Public names for the CLI's --arch; each takes num_classes as a keyword.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "squeezenet1_0": squeezenet1_0,
    "squeezenet1_0_caffe": lambda **kw: squeezenet1_0(caffe=True, **kw),
    "squeezenet1_0_simple_bypass": lambda **kw: squeezenet1_0(bypass="simple", **kw),
    "squeezenet1_0_complex_bypass": lambda **kw: squeezenet1_0(bypass="complex", **kw),
    "squeezenet1_1": squeezenet1_1,
    "alexnet": alexnet,
    "squeezenet_cifar": squeezenet_cifar,
    "squeezenet_cifar_bn": lambda **kw: squeezenet_cifar(batch_norm=True, **kw),
    "squeezenet_cifar_simple_bypass": lambda **kw: squeezenet_cifar(bypass="simple", **kw),
    "squeezenet_cifar_complex_bypass": lambda **kw: squeezenet_cifar(bypass="complex", **kw),
    # v1.1's pools with every Fire 1.5x as wide (Section 5 metaparameters base_e = incr_e = 192, not
    # 128): the best of the 32x32 designs at 45 CPU minutes (benchmarks/sweep_recipes.py).
    "squeezenet_cifar_bn_wide": lambda **kw: squeezenet_cifar(batch_norm=True, base_e=192, incr_e=192, **kw),
    # The same with Section 6's simple bypass (no extra parameters; its CPU runs went as fast as the
    # plain wide net's): the 45-minute recipe of docs/training.md.
    "squeezenet_cifar_bn_wide_simple_bypass": lambda **kw: squeezenet_cifar(
        batch_norm=True, base_e=192, incr_e=192, bypass="simple", **kw),
    "squeezenet1_0_cifar": lambda **kw: squeezenet_cifar(pools="1.0", **kw),
    "squeezenet1_0_cifar_bn": lambda **kw: squeezenet_cifar(pools="1.0", batch_norm=True, **kw),
    "alexnet_cifar": alexnet_cifar,
    "alexnet_cifar_bn": lambda **kw: alexnet_cifar(batch_norm=True, **kw),
}


def build_model(arch: str, **kwargs) -> nn.Module:
    """Build an architecture by name; ``kwargs`` go to its builder (e.g. ``num_classes``)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**kwargs)


def model_from_spec(spec: dict) -> nn.Module:
    """Rebuild a model from ``model.spec.to_dict()`` (stored in checkpoints and .sqz files)."""
    spec = spec_from_dict(spec)
    return SqueezeNet(spec) if isinstance(spec, SqueezeNetSpec) else AlexNet(spec)

