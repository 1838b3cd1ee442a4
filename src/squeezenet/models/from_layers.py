"""A runnable torch model from decoded weight layers: the one way every compressed format becomes a model.

The codecs (``.sqz``, ``.net``) and the exporters hold a model as per-layer arrays: anything with a
``dense_weight()`` method and a ``bias`` array, in weight-layer order (``compress.sparse.SparseLayer``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from squeezenet.models.stats import weight_layers

__all__ = ["model_from_layers", "meta_model"]


class _SkipInitialisation(TorchFunctionMode):
    """Skip torch.nn.init and in-place random fills: a meta-device ``normal_`` alone would import
    torch's Python decompositions (about 3 s on first use), and the values are never used."""

    _RANDOM_FILLS = {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.fill_, torch.Tensor.zero_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._RANDOM_FILLS or getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs.get("tensor")
        return func(*args, **kwargs)


def meta_model(spec: dict) -> nn.Module:
    """The model of ``spec`` on the meta device: shapes only, no memory, no initialisation."""
    from squeezenet.models import model_from_spec

    with torch.device("meta"), _SkipInitialisation():
        return model_from_spec(spec)


def model_from_layers(spec: dict, layers, *, classes: list[str] | None = None, preprocess: str | None = None
                      ) -> nn.Module:
    """The model (eval mode) of a BatchNorm-free ``spec`` whose weights are ``layers`` (one per weight
    layer, network order). Built on the meta device, then every parameter is replaced by its decoded
    tensor: no initialisation and no second copy of the weights."""
    model = meta_model(spec)
    modules = weight_layers(model)
    if len(modules) != len(layers):
        raise ValueError(f"{len(layers)} weight layers for an architecture of {len(modules)}")
    for (name, module), layer in zip(modules, layers):
        weight = layer.dense_weight()
        if tuple(weight.shape) != tuple(module.weight.shape):
            raise ValueError(f"{name}: weights of shape {tuple(weight.shape)}, expected {tuple(module.weight.shape)}")
        module.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)))
        if module.bias is not None:
            module.bias = nn.Parameter(torch.from_numpy(np.array(layer.bias, dtype=np.float32)))
    left = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if left:
        raise ValueError(f"the architecture has parameters outside its weight layers ({', '.join(left[:3])}): "
                         "fold BatchNorm first")
    if classes is not None:
        model.class_names = list(classes)
    if preprocess is not None:
        model.preprocess = preprocess
    return model.eval()
