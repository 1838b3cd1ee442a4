"""Any model file as Deep Compression layers (codebook, codes, relative indices), ready for the C emitter.

- ``.net`` (the published release) and ``.sqz`` (ours) are already in that form and are used as is.
- A dense model (``.pth``, ``.safetensors``): BatchNorm is folded, then each layer gets an 8-bit
  codebook (entry 0 = 0.0, 255 k-means centroids with the paper's linear initialisation, Han et al.
  2016 Sec. 3.2) and the sparse form with 4-bit relative indices. This is weight sharing *without*
  retraining, so the exported model differs slightly from the dense one; ``reference_model``
  gives the PyTorch model with exactly the exported weights, and `docs/DEPLOY.md` reports the drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from torch import nn

from squeezenet.compress.quantize import quantize_layer, to_sparse_layer
from squeezenet.compress.sparse import SparseLayer
from squeezenet.data import default_preprocess
from squeezenet.export.graph import CAFFE_SQUEEZENET_V1_0, build_network
from squeezenet.models import model_from_layers, weight_layers
from squeezenet.weights import load_model, resolve_weights

__all__ = ["CompressedModel", "compressed_model", "reference_model", "DENSE_CODEBOOK_BITS"]

DENSE_CODEBOOK_BITS = 8
_MAX_GAP = 15


@dataclass
class CompressedModel:
    spec: dict  # architecture spec (BatchNorm folded)
    layers: list[SparseLayer]  # one per weight layer, network order
    preprocess: str  # the preset its input needs: "caffe", "torchvision" or "cifar"
    quantized_here: bool  # True when a dense model was given an 8-bit codebook by this module


def _codebook_layer(module: nn.Module) -> SparseLayer:
    """The layer with an 8-bit codebook (the pipeline's k-means, no retraining) and 4-bit relative indices."""
    return to_sparse_layer(quantize_layer(module.weight, DENSE_CODEBOOK_BITS), module.bias, _MAX_GAP)


def compressed_model(path: str | os.PathLike, arch: str | None = None) -> CompressedModel:
    """Read ``path`` (.net, .sqz, .pth, .pt or .safetensors) into the compressed-layer form.

    ``arch`` is needed only for a bare state dict that fits several architectures. Raises
    ValueError "unsupported layer ..." for architectures the exporters do not run (AlexNet's fully
    connected layers), and ValueError for a file that is not a model.
    """
    source = resolve_weights(str(path))
    with open(source, "rb") as handle:
        head = handle.read(4)
    model = load_model(source, arch, fold_bn=True)
    preset = default_preprocess(model)
    spec = model.spec.to_dict()
    build_network(spec)  # unsupported layers fail here, before any work
    if source.suffix == ".net":
        from squeezenet.compress.caffe_net import read_net

        return CompressedModel(dict(CAFFE_SQUEEZENET_V1_0), read_net(source), preset, False)
    if source.suffix == ".sqz" or head.startswith(b"SQZ"):
        from squeezenet.compress.sqz import read_sqz

        stored_spec, layers, _ = read_sqz(source)
        return CompressedModel(stored_spec, layers, preset, False)
    layers = [_codebook_layer(module) for _, module in weight_layers(model)]
    return CompressedModel(spec, layers, preset, True)


def reference_model(compressed: CompressedModel) -> nn.Module:
    """The PyTorch model (eval mode) holding exactly the weights of ``compressed``."""
    return model_from_layers(compressed.spec, compressed.layers)
