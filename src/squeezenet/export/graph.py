"""The network the exporters and runtimes run: `squeezenet.architecture`'s operations, limited to
what they implement (the SqueezeNet family with BatchNorm folded).

Torch-free, so the NumPy runtime can use it. Weight layers are numbered in network order, the
order of ``squeezenet.models.weight_layers`` and of the layers in a compressed file.
"""

from __future__ import annotations

from squeezenet.architecture import CAFFE_SQUEEZENET_V1_0, Conv, Fire, GlobalAveragePool, MaxPool, Network, network

__all__ = [
    "CAFFE_SQUEEZENET_V1_0",
    "Conv",
    "Fire",
    "GlobalAveragePool",
    "MaxPool",
    "Network",
    "build_network",
]


def build_network(spec: dict) -> Network:
    """The operations of a SqueezeNet spec dict (BatchNorm already folded).

    Raises ValueError "unsupported layer ..." for what the runtimes do not implement: AlexNet's
    fully connected layers, and BatchNorm that has not been folded into its convolution.
    """
    if not isinstance(spec, dict):
        raise ValueError("architecture spec must be a mapping")
    family = spec.get("family")
    if family == "alexnet":
        raise ValueError("unsupported layer: Linear (AlexNet's fully connected classifier); export supports the SqueezeNet family")
    if family != "squeezenet":
        raise ValueError(f"unsupported layer: unknown model family {family!r}")
    if spec.get("batch_norm"):
        raise ValueError("unsupported layer: BatchNorm2d (fold it into the convolutions first: load_model(..., fold_bn=True))")
    return network(spec)
