"""Calibration: run the fp32 network on unlabeled photos and record what int8 quantization needs.

For every tensor that gets its own int8 scale (see `quantized_tensors`) we keep a histogram of its
fp32 values; for every convolution, the mean of its input windows (what bias correction needs).
The fp32 network is the NumPy runtime's (`squeezenet.runtime_numpy`), walked over the same
operation list, so calibration needs no torch.

The histogram is TensorRT's calibration histogram (Migacz 2017, "8-bit Inference with TensorRT")
made symmetric and growable: ``2 * BINS_PER_SIDE`` equal bins over [-R, R]; when a batch holds a
value beyond R, R doubles and neighbouring bins merge in pairs, so no batch is re-binned and the
result does not depend on which batch came first except through R.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.graph import Conv, Fire, GlobalAveragePool, MaxPool, Network
from squeezenet import runtime_numpy

__all__ = ["BINS_PER_SIDE", "Calibration", "TensorStatistics", "calibrate", "mean_window", "quantized_tensors"]

BINS_PER_SIDE = 2048
INPUT = "input"


def quantized_tensors(network: Network) -> dict[str, bool]:
    """Name -> non-negative-by-construction, for every tensor with its own int8 scale, in network order.

    ``input``; each stand-alone convolution's output (its module name); per Fire: ``NAME.squeeze``,
    ``NAME.concat`` (both expand outputs: one shared scale), and with a bypass ``NAME.bypass`` (the
    1x1 bypass convolution, no ReLU) and ``NAME`` (the sum). Max pooling keeps its input's scale.
    """
    tensors = {INPUT: False}
    current = INPUT  # the tensor flowing between operations (max pooling keeps it)
    for operation in network.operations:
        if isinstance(operation, Conv):
            tensors[operation.name] = operation.relu
            current = operation.name
        elif isinstance(operation, Fire):
            tensors[f"{operation.name}.squeeze"] = True
            tensors[f"{operation.name}.concat"] = True
            if isinstance(operation.bypass, Conv):
                tensors[f"{operation.name}.bypass"] = False
                tensors[operation.name] = False
            elif operation.bypass == "identity":
                tensors[operation.name] = tensors[current]  # ReLU output plus a non-negative input
            current = operation.name if operation.bypass is not None else f"{operation.name}.concat"
    return tensors


@dataclass
class TensorStatistics:
    """Histogram of one tensor's fp32 values over all calibration photos."""

    nonnegative: bool  # True for ReLU outputs: the range starts at 0 whatever the data says
    minimum: float = np.inf
    maximum: float = -np.inf
    count: int = 0
    zeros: int = 0
    radius: float = 0.0  # R: the histogram spans [-R, R]
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(2 * BINS_PER_SIDE, dtype=np.int64))

    @property
    def bin_width(self) -> float:
        return self.radius / BINS_PER_SIDE

    def bin_centers(self) -> np.ndarray:
        return (np.arange(2 * BINS_PER_SIDE) - BINS_PER_SIDE + 0.5) * self.bin_width

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
        self.minimum, self.maximum = min(self.minimum, low), max(self.maximum, high)
        self.count += values.size
        self.zeros += int(np.count_nonzero(values == 0))
        reach = max(abs(low), abs(high))
        if self.radius == 0.0:
            self.radius = reach if reach > 0 else 1.0
        while reach > self.radius:
            self._double()
        index = np.floor(values.astype(np.float64) / self.bin_width).astype(np.int64) + BINS_PER_SIDE
        np.clip(index, 0, 2 * BINS_PER_SIDE - 1, out=index)
        self.histogram += np.bincount(index, minlength=2 * BINS_PER_SIDE)

    def _double(self) -> None:
        half = BINS_PER_SIDE // 2
        negative = self.histogram[:BINS_PER_SIDE].reshape(-1, 2).sum(axis=1)
        positive = self.histogram[BINS_PER_SIDE:].reshape(-1, 2).sum(axis=1)
        merged = np.zeros_like(self.histogram)
        merged[half:BINS_PER_SIDE] = negative
        merged[BINS_PER_SIDE:BINS_PER_SIDE + half] = positive
        self.histogram = merged
        self.radius *= 2.0


@dataclass
class Calibration:
    """What the fp32 network showed on the calibration photos."""

    network: Network
    statistics: dict[str, TensorStatistics]  # per quantized tensor, network order
    mean_inputs: dict[int, np.ndarray]  # weight layer -> mean input window [C, k, k], padding included
    images: int


def mean_window(x: np.ndarray, conv: Conv) -> np.ndarray:
    """Mean over images and output positions of each (channel, ky, kx) entry of the input windows."""
    if conv.padding:
        x = np.pad(x, ((0, 0), (0, 0), (conv.padding,) * 2, (conv.padding,) * 2))
    reach = conv.stride * (conv.out_size - 1) + 1
    means = np.empty((conv.in_channels, conv.kernel, conv.kernel), dtype=np.float64)
    for row in range(conv.kernel):
        for column in range(conv.kernel):
            window = x[:, :, row:row + reach:conv.stride, column:column + reach:conv.stride]
            means[:, row, column] = window.mean(axis=(0, 2, 3), dtype=np.float64)
    return means


def calibrate(network: Network, layers: list[SparseLayer], images: np.ndarray, *, batch_size: int = 8) -> Calibration:
    """Run the fp32 network (``build_network(spec)``) over ``images`` (float32 [N, C, H, W],
    preprocessed) and collect statistics."""
    images = np.asarray(images, dtype=np.float32)
    expected = (network.input_channels, network.input_size, network.input_size)
    if images.ndim != 4 or images.shape[1:] != expected or len(images) == 0:
        raise ValueError(f"calibration needs images of shape [N, {', '.join(map(str, expected))}], got {list(images.shape)}")
    convolutions = network.convolutions()
    if len(layers) != len(convolutions):
        raise ValueError(f"{len(layers)} weight layers where the network has {len(convolutions)}")
    parameters = {conv.layer: (layer.dense_weight(), np.asarray(layer.bias, dtype=np.float32))
                  for conv, layer in zip(convolutions, layers)}
    statistics = {name: TensorStatistics(nonnegative) for name, nonnegative in quantized_tensors(network).items()}
    window_sums = {conv.layer: np.zeros((conv.in_channels, conv.kernel, conv.kernel)) for conv in convolutions}

    def convolve(x: np.ndarray, conv: Conv) -> np.ndarray:
        window_sums[conv.layer] += mean_window(x, conv) * len(x)
        weight, bias = parameters[conv.layer]
        return runtime_numpy.convolve(x, weight, bias, conv)

    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        statistics[INPUT].add(x)
        for operation in network.operations:
            if isinstance(operation, Conv):
                x = convolve(x, operation)
                statistics[operation.name].add(x)
            elif isinstance(operation, MaxPool):
                x = runtime_numpy.max_pool(x, operation)
            elif isinstance(operation, Fire):
                squeezed = convolve(x, operation.squeeze)
                statistics[f"{operation.name}.squeeze"].add(squeezed)
                out = np.concatenate([convolve(squeezed, operation.expand1x1),
                                      convolve(squeezed, operation.expand3x3)], axis=1)
                statistics[f"{operation.name}.concat"].add(out)
                if isinstance(operation.bypass, Conv):
                    shortcut = convolve(x, operation.bypass)
                    statistics[f"{operation.name}.bypass"].add(shortcut)
                    out = out + shortcut
                elif operation.bypass == "identity":
                    out = out + x
                if operation.bypass is not None:
                    statistics[operation.name].add(out)
                x = out
            elif isinstance(operation, GlobalAveragePool):
                x = x.mean(axis=(2, 3))
    mean_inputs = {layer: total / len(images) for layer, total in window_sums.items()}
    return Calibration(network, statistics, mean_inputs, len(images))
