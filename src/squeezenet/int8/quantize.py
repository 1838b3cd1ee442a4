"""From fp32 layers and calibration to every integer the int8 engine uses (the TFLite int8 scheme).

The TFLite quantization spec (Jacob et al. 2018, Sec. 2): real = scale * (q - zero_point).

- Activations: per tensor, asymmetric int8. ``scale = (high - low) / 255`` and ``zero_point =
  round(-128 - low / scale)`` for the interval a range rule gives; a ReLU output has low = 0,
  hence zero point -128 and all 256 levels on [0, high].
- Weights: per output channel, symmetric int8 in [-127, 127], zero point 0. Deep Compression
  weights are already shared values, so ``weight_scale[c] = max |codebook value used by channel c|
  / 127`` and ``q = round(codebook value / weight_scale[c])``: each codebook entry maps to one int8
  level per channel. A channel whose weights are all zero gets scale 1.
- Bias: int32, ``round(bias / (input_scale * weight_scale[c]))``, zero point 0.
- Requantization: ``M[c] = input_scale * weight_scale[c] / output_scale`` as (multiplier, shift)
  by `quantize_multiplier`.
- Addition (Fire bypass): TFLite ADD's scheme: both inputs lifted by 2**20 and rescaled by
  ``scale_i / (2 * max(scale_1, scale_2))``, summed, then rescaled by ``2 * max(scale_1, scale_2) /
  (2**20 * output_scale)``.

Scales are float32 values (as TFLite stores them); every derived real number is computed in float64
from those float32 values, then rounded half away from zero.

The classifier's output (the last convolution, before global average pooling) always gets its full
observed range (rule ``minmax``), whatever the rule of the other tensors: its largest values are the
winning class scores, and clipping them changes the answer. On the calibration photos of
``results/imagenet-small.sqz`` (no labels used) that cut the KL divergence of the int8 logits from
the fp32 ones from 0.0168 to 0.0110 under rule ``mse``.

Bias correction (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias
Correction", Sec. 4.2, the empirical variant): weight quantization shifts each output channel's
mean by ``E[(W_int8 * weight_scale - W) x]``; we subtract that shift from the fp32 bias before
quantizing it, with ``E[x]`` the mean input window measured in fp32 on the calibration photos.
`squeezenet.int8.correction` goes further, through the int8 network, and replaces these biases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.graph import Conv, Fire, GlobalAveragePool, Network
from squeezenet.int8.arithmetic import (
    ADD_LEFT_SHIFT,
    INT32_MAX,
    quantize_multiplier,
    round_half_away_from_zero,
)
from squeezenet.int8.calibration import INPUT, Calibration
from squeezenet.int8.ranges import activation_range

__all__ = ["ActivationQuantization", "AddQuantization", "ConvQuantization", "Quantization", "int32_bias",
           "quantize_model", "DEFAULT_RANGE_RULE", "LOGITS_RANGE_RULE"]

DEFAULT_RANGE_RULE = "mse"  # measured best of RANGE_RULES in benchmarks/bench_int8.py (BENCHMARKS.md)
LOGITS_RANGE_RULE = "minmax"  # the classifier's output: never clip the class scores


@dataclass(frozen=True)
class ActivationQuantization:
    scale: float  # a float32 value
    zero_point: int

    @classmethod
    def from_range(cls, low: float, high: float, nonnegative: bool) -> "ActivationQuantization":
        scale = float(np.float32((high - low) / 255.0))
        if nonnegative:
            return cls(scale, -128)
        zero_point = int(np.clip(round_half_away_from_zero(-128.0 - low / scale), -128, 127))
        return cls(scale, zero_point)


@dataclass(frozen=True)
class ConvQuantization:
    """One convolution: int8 weights, int32 bias, and the per-channel requantization."""

    input: str  # the names of its input and output tensors
    output: str
    weight: np.ndarray  # int8 [O, I, k, k]
    weight_scale: np.ndarray  # float32 [O]
    bias: np.ndarray  # int32 [O]
    multiplier: np.ndarray  # int32 [O]
    shift: np.ndarray  # int32 [O]


@dataclass(frozen=True)
class AddQuantization:
    """One quantized addition ``output = first + second`` (TFLite ADD)."""

    first: str
    second: str
    output: str
    first_multiplier: int
    first_shift: int
    second_multiplier: int
    second_shift: int
    output_multiplier: int
    output_shift: int


@dataclass(frozen=True)
class Quantization:
    """Everything the int8 engine needs besides the operation list: a plain, serialisable record."""

    range_rule: str
    bias_correction: str  # "none", "weights" (Nagel et al.) or "sequential" (`squeezenet.int8.correction`)
    activations: dict[str, ActivationQuantization]
    convolutions: dict[int, ConvQuantization]  # by weight layer
    additions: dict[str, AddQuantization]  # by Fire name


def _weights(layer: SparseLayer, conv: Conv) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weight [O, I, k, k], float32 weight scale [O]) from the layer's shared values."""
    dense = layer.dense_weight().reshape(conv.out_channels, -1).astype(np.float64)
    largest = np.abs(dense).max(axis=1)  # every stored value is a codebook entry the channel uses
    scale = np.where(largest > 0, largest / 127.0, 1.0).astype(np.float32)
    levels = round_half_away_from_zero(dense / scale.astype(np.float64)[:, None])
    weight = np.clip(levels, -127, 127).astype(np.int8).reshape(conv.weight_shape)
    return weight, scale


def int32_bias(conv: Conv, levels: np.ndarray) -> np.ndarray:
    """Integer bias levels as int32, refused where the accumulator could overflow."""
    # The largest accumulator is |bias| + 127 * 255 * fan-in; keep it inside int32 by construction.
    fan_in = conv.in_channels * conv.kernel * conv.kernel
    headroom = INT32_MAX - 127 * 255 * fan_in
    if np.any(np.abs(levels) > headroom):
        raise ValueError(f"layer {conv.name}: a bias is too large for an int32 accumulator at these scales")
    return np.asarray(levels).astype(np.int32)


def _convolution(conv: Conv, layer: SparseLayer, input_name: str, output_name: str,
                 activations: dict[str, ActivationQuantization], mean_input: np.ndarray | None) -> ConvQuantization:
    weight, weight_scale = _weights(layer, conv)
    bias = np.asarray(layer.bias, dtype=np.float64)
    if mean_input is not None:
        error = weight.astype(np.float64) * weight_scale.astype(np.float64)[:, None, None, None] - layer.dense_weight()
        bias = bias - error.reshape(conv.out_channels, -1) @ mean_input.reshape(-1)
    input_scale = activations[input_name].scale
    output_scale = activations[output_name].scale
    accumulator_scale = input_scale * weight_scale.astype(np.float64)
    bias_levels = int32_bias(conv, round_half_away_from_zero(bias / accumulator_scale))
    pairs = [quantize_multiplier(scale / output_scale) for scale in accumulator_scale]
    return ConvQuantization(
        input_name, output_name, weight, weight_scale, bias_levels,
        np.array([m for m, _ in pairs], dtype=np.int32), np.array([s for _, s in pairs], dtype=np.int32),
    )


def _addition(first: str, second: str, output: str, activations: dict[str, ActivationQuantization]) -> AddQuantization:
    first_scale, second_scale = activations[first].scale, activations[second].scale
    twice_largest = 2.0 * max(first_scale, second_scale)
    return AddQuantization(
        first, second, output,
        *quantize_multiplier(first_scale / twice_largest),
        *quantize_multiplier(second_scale / twice_largest),
        *quantize_multiplier(twice_largest / ((1 << ADD_LEFT_SHIFT) * activations[output].scale)),
    )


def quantize_model(network: Network, layers: list[SparseLayer], calibration: Calibration, *,
                   range_rule: str = DEFAULT_RANGE_RULE, bias_correction: bool = True,
                   logits_range_rule: str | None = LOGITS_RANGE_RULE) -> Quantization:
    """The int8 model of ``layers`` (network order) with activation ranges from ``calibration``;
    the classifier's output takes ``logits_range_rule`` (None: ``range_rule`` like the rest)."""
    convolutions = network.convolutions()
    if len(layers) != len(convolutions):
        raise ValueError(f"{len(layers)} weight layers where the network has {len(convolutions)}")
    if calibration.network != network:
        raise ValueError("the calibration was recorded on a different network")
    logits = network.operations[-2].name if isinstance(network.operations[-1], GlobalAveragePool) else None
    activations = {
        name: ActivationQuantization.from_range(
            *activation_range(statistics, logits_range_rule if name == logits and logits_range_rule else range_rule),
            statistics.nonnegative)
        for name, statistics in calibration.statistics.items()
    }
    plans: dict[int, ConvQuantization] = {}
    additions: dict[str, AddQuantization] = {}

    def plan(conv: Conv, input_name: str, output_name: str) -> None:
        mean = calibration.mean_inputs[conv.layer] if bias_correction else None
        plans[conv.layer] = _convolution(conv, layers[conv.layer], input_name, output_name, activations, mean)

    current = INPUT
    for operation in network.operations:
        if isinstance(operation, Conv):
            plan(operation, current, operation.name)
            current = operation.name
        elif isinstance(operation, Fire):
            name = operation.name
            plan(operation.squeeze, current, f"{name}.squeeze")
            plan(operation.expand1x1, f"{name}.squeeze", f"{name}.concat")
            plan(operation.expand3x3, f"{name}.squeeze", f"{name}.concat")
            if isinstance(operation.bypass, Conv):
                plan(operation.bypass, current, f"{name}.bypass")
                additions[name] = _addition(f"{name}.concat", f"{name}.bypass", name, activations)
            elif operation.bypass == "identity":
                additions[name] = _addition(f"{name}.concat", current, name, activations)
            current = name if operation.bypass is not None else f"{name}.concat"
    return Quantization(range_rule, "weights" if bias_correction else "none", activations, plans, additions)

