"""Run a compressed SqueezeNet (.net or .sqz) with NumPy alone: no torch in this module's imports.

For a device that has Python and NumPy but no room for torch. The file is read by the format's own
codec (`squeezenet.compress.sqz`, `squeezenet.compress.caffe_net`: torch-free, the same code the
torch loader uses) into the Deep Compression form (`SparseLayer`: codebook, codes, relative
indices), expanded once to dense float32 weights, and the network walks the operations of
`squeezenet.architecture.network`. Input is the preprocessed float32 batch [N, C, H, W] that the
PyTorch model takes (`squeezenet.preprocess_numpy` makes it from photos without torch).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from squeezenet.architecture import CAFFE_SQUEEZENET_V1_0, Conv, Fire, GlobalAveragePool, MaxPool, Network, network
from squeezenet.compress.sparse import SparseLayer

__all__ = ["NumpyModel", "convolve", "load_numpy_model", "max_pool", "read_compressed"]


def read_compressed(path: str | os.PathLike) -> tuple[Network, list[SparseLayer]]:
    """(network, layers) of a .net or .sqz file, without torch."""
    from squeezenet.compress.caffe_net import read_net
    from squeezenet.compress.sqz import read_sqz

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if path.suffix == ".sqz" or head.startswith(b"SQZ"):
        spec, layers, _ = read_sqz(path)
    elif path.suffix == ".net":
        spec, layers = CAFFE_SQUEEZENET_V1_0, read_net(path)
    else:
        raise ValueError(f"{path}: the NumPy runtime reads compressed .net or .sqz files, not {path.suffix or 'this file'}")
    if spec.get("family") != "squeezenet":
        raise ValueError(f"{path}: unsupported layer: the NumPy runtime runs the SqueezeNet family, not {spec.get('family')}")
    return network(spec), layers


def convolve(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, conv: Conv) -> np.ndarray:
    """[N, C, H, W] -> [N, O, H', W'] as one matrix product over (channel, ky, kx) windows."""
    batch = x.shape[0]
    out_size = conv.out_size
    if conv.padding:
        x = np.pad(x, ((0, 0), (0, 0), (conv.padding,) * 2, (conv.padding,) * 2))
    if conv.kernel == 1 and conv.stride == 1:
        y = np.matmul(weight.reshape(conv.out_channels, -1), x.reshape(batch, conv.in_channels, -1))
    else:
        windows = np.lib.stride_tricks.sliding_window_view(x, (conv.kernel, conv.kernel), axis=(2, 3))
        windows = windows[:, :, :: conv.stride, :: conv.stride][:, :, :out_size, :out_size]
        # [N, C, H', W', k, k] -> [N, H'W', C k k] so one matmul does the whole layer.
        patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(batch, out_size * out_size, -1)
        y = np.matmul(weight.reshape(conv.out_channels, -1), patches.transpose(0, 2, 1))
    y = y.reshape(batch, conv.out_channels, out_size, out_size) + bias.reshape(1, -1, 1, 1)
    return np.maximum(y, 0.0, out=y) if conv.relu else y


def max_pool(x: np.ndarray, pool: MaxPool) -> np.ndarray:
    # Pad on the bottom/right with -inf so the rounded-up last window sees only real pixels.
    reach = (pool.out_size - 1) * pool.stride + pool.kernel
    extra = max(0, reach - pool.in_size)
    if extra:
        x = np.pad(x, ((0, 0), (0, 0), (0, extra), (0, extra)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool.kernel, pool.kernel), axis=(2, 3))
    windows = windows[:, :, :: pool.stride, :: pool.stride][:, :, : pool.out_size, : pool.out_size]
    return windows.max(axis=(4, 5))


class NumpyModel:
    """A callable: float32 [N, C, H, W] -> float32 logits [N, num_classes]."""

    def __init__(self, network: Network, layers: list[SparseLayer]) -> None:
        self.network = network
        self.parameters = {
            conv.layer: (layer.dense_weight(), np.asarray(layer.bias, dtype=np.float32))
            for conv, layer in zip(network.convolutions(), layers)
        }

    def _conv(self, x: np.ndarray, conv: Conv) -> np.ndarray:
        weight, bias = self.parameters[conv.layer]
        return convolve(x, weight, bias, conv)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32)
        expected = (self.network.input_channels, self.network.input_size, self.network.input_size)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"input must have shape [N, {', '.join(map(str, expected))}], got {list(x.shape)}")
        for operation in self.network.operations:
            if isinstance(operation, Conv):
                x = self._conv(x, operation)
            elif isinstance(operation, MaxPool):
                x = max_pool(x, operation)
            elif isinstance(operation, Fire):
                squeezed = self._conv(x, operation.squeeze)
                out = np.concatenate([self._conv(squeezed, operation.expand1x1),
                                      self._conv(squeezed, operation.expand3x3)], axis=1)
                if operation.bypass == "identity":
                    out += x
                elif isinstance(operation.bypass, Conv):
                    out += self._conv(x, operation.bypass)
                x = out
            elif isinstance(operation, GlobalAveragePool):
                x = x.mean(axis=(2, 3))
            else:
                raise AssertionError(f"no NumPy kernel for {operation!r}")
        return x


def load_numpy_model(path: str | os.PathLike) -> NumpyModel:
    """A `NumpyModel` from a .net or .sqz file."""
    return NumpyModel(*read_compressed(path))
