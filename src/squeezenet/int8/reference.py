"""The int8 reference engine: exact integer inference, the bit-exact specification for a C engine.

Walks `squeezenet.export.graph.Network` like the fp32 NumPy runtime; every tensor between
operations is int8 with the scale and zero point of `Quantization.activations`. Per operation
(TFLite's int8 reference kernels; Jacob et al. 2018, Sec. 2.3-2.4):

- Input: ``q = clamp(round(x / scale) + zero_point, -128, 127)``, ``x / scale`` in float32
  (TFLite's ``AffineQuantize``), round half away from zero.
- Convolution: ``acc[c] = bias[c] + sum w[c, j] * (q[j] - input_zero_point)`` in int32, padding
  contributing ``q = input_zero_point`` (real 0); then ``out = MultiplyByQuantizedMultiplier(acc,
  multiplier[c], shift[c]) + output_zero_point`` clamped to [-128, 127]. ReLU is the clamp's lower
  bound raised to the output zero point (a no-op when that is -128, as for every ReLU output here).
- Max pooling: the int8 maximum (same scale; windows past the edge see only real pixels).
- Fire: both expand convolutions requantize straight into the concatenation's scale.
- Bypass addition: TFLite ADD (``quantize.AddQuantization``): ``a = (q1 - zp1) << 20`` rescaled by
  its multiplier, likewise ``b``; ``out = MultiplyByQuantizedMultiplier(a + b, ...) + zp``, clamped.
- Global average pool: our choice is no requantization: the int32 sum over positions of
  ``q - zero_point``; the logits are that sum times ``logits_scale = scale / (H * W)`` in float32 (one rounding). The argmax
  of the int32 sums is the prediction, with no rounding after the last convolution.

The integer convolutions run as floating-point matrix products, exact by a bound rather than by
luck: every product and partial sum is an integer of magnitude at most ``255 * sum_j |w[c, j]|``
(as |q - zp| <= 255). Where that bound is below 2**24 for every channel (the usual case: the
weights are pruned and mostly small) float32 holds every partial sum exactly, in any summation
order; otherwise the layer runs in float64 (exact below 2**53, i.e. for any fan-in up to 2**37).
"""

from __future__ import annotations

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.graph import Conv, Fire, GlobalAveragePool, MaxPool, Network, build_network
from squeezenet.int8.arithmetic import ADD_LEFT_SHIFT, multiply_by_quantized_multiplier, round_half_away_from_zero
from squeezenet.int8.calibration import INPUT, calibrate
from squeezenet.int8.correction import correct_biases
from squeezenet.int8.quantize import DEFAULT_RANGE_RULE, ConvQuantization, Quantization, quantize_model

__all__ = ["BIAS_CORRECTIONS", "DEFAULT_BIAS_CORRECTION", "Int8Model", "quantize_input"]

CHUNK = 8  # photos per matrix product
BIAS_CORRECTIONS = ("none", "weights", "sequential")
DEFAULT_BIAS_CORRECTION = "sequential"


def quantize_input(images: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float32 images -> int8, TFLite ``AffineQuantize`` (float32 division, ties away from zero)."""
    ratio = np.asarray(images, dtype=np.float32) / np.float32(scale)
    return np.clip(round_half_away_from_zero(ratio) + zero_point, -128, 127).astype(np.int8)


def _exact_float_weight(weight: np.ndarray) -> np.ndarray:
    """[O, I*k*k] weights as float32 when float32 sums them exactly, float64 otherwise."""
    matrix = weight.reshape(len(weight), -1)
    largest_sum = 255 * int(np.abs(matrix.astype(np.int64)).sum(axis=1).max(initial=0))
    return matrix.astype(np.float32 if largest_sum < 1 << 24 else np.float64)


class Int8Model:
    """A callable: float32 [N, C, H, W] -> dequantized float32 logits [N, classes], integers inside.

    ``integer_logits(q)`` gives the raw int32 sums for an int8 input; ``logits_scale`` turns them
    into logits.
    """

    def __init__(self, network: Network, quantization: Quantization) -> None:
        self.network = network
        self.quantization = quantization
        self._weights = {layer: _exact_float_weight(plan.weight) for layer, plan in quantization.convolutions.items()}
        if sorted(self._weights) != [conv.layer for conv in network.convolutions()]:
            raise ValueError("the quantization does not cover this network's convolutions")
        last = network.operations[-2]
        if not isinstance(last, Conv) or not isinstance(network.operations[-1], GlobalAveragePool):
            raise ValueError("the int8 engine expects the classifier convolution then global average pooling")
        self._logits_tensor = last.name
        # float32, so that a single-precision FPU (a Cortex-M7's FPv5-SP, or unicorn's M7) computes the
        # same logits: each is float32(sum) * logits_scale, one rounding (the sums stay below 2**24).
        self.logits_scale = np.float32(quantization.activations[last.name].scale / float(last.out_size * last.out_size))

    @classmethod
    def calibrated(cls, spec: dict, layers: list[SparseLayer], images: np.ndarray, *,
                   range_rule: str = DEFAULT_RANGE_RULE,
                   bias_correction: str = DEFAULT_BIAS_CORRECTION) -> "Int8Model":
        """Calibrate on ``images`` (preprocessed float32 photos) and quantize, in one call.

        ``bias_correction``: "none", "weights" (Nagel et al.'s, for the weight error alone) or
        "sequential" (`squeezenet.int8.correction`: one more int8 pass over ``images``; the
        classifier keeps Nagel et al.'s).
        """
        network = build_network(spec)
        return cls.from_calibration(network, layers, calibrate(network, layers, images), images,
                                    range_rule=range_rule, bias_correction=bias_correction)

    @classmethod
    def from_calibration(cls, network: Network, layers: list[SparseLayer], calibration, images: np.ndarray, *,
                         range_rule: str = DEFAULT_RANGE_RULE,
                         bias_correction: str = DEFAULT_BIAS_CORRECTION) -> "Int8Model":
        """``calibrated`` from ``calibration``, the statistics already recorded on ``images`` (the
        benchmarks cache them): the one place that turns statistics into the shipped int8 model."""
        if bias_correction not in BIAS_CORRECTIONS:
            raise ValueError(f"unknown bias correction {bias_correction!r}; choose from {', '.join(BIAS_CORRECTIONS)}")
        model = cls(network, quantize_model(network, layers, calibration, range_rule=range_rule,
                                            bias_correction=bias_correction != "none"))
        if bias_correction == "sequential":
            model = cls(network, correct_biases(model, layers, calibration, images))
        return model

    @property
    def input_quantization(self):
        return self.quantization.activations[INPUT]

    def quantize_input(self, images: np.ndarray) -> np.ndarray:
        expected = (self.network.input_channels, self.network.input_size, self.network.input_size)
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"input must have shape [N, {', '.join(map(str, expected))}], got {list(images.shape)}")
        return quantize_input(images, self.input_quantization.scale, self.input_quantization.zero_point)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        sums = self.integer_logits(self.quantize_input(images))
        return sums.astype(np.float32) * self.logits_scale

    def _zero_point(self, name: str) -> int:
        return self.quantization.activations[name].zero_point

    def _convolve(self, q: np.ndarray, conv: Conv) -> np.ndarray:
        # A few photos at a time: conv1's patch matrix is ~20 MB a photo, its int64 accumulators ~9 MB.
        return np.concatenate([self._convolve_batch(q[start:start + CHUNK], conv) for start in range(0, len(q), CHUNK)])

    def _convolve_batch(self, q: np.ndarray, conv: Conv) -> np.ndarray:
        plan: ConvQuantization = self.quantization.convolutions[conv.layer]
        batch, size = q.shape[0], conv.out_size
        weight = self._weights[conv.layer]
        x = q.astype(weight.dtype) - weight.dtype.type(self._zero_point(plan.input))
        if conv.padding:
            x = np.pad(x, ((0, 0), (0, 0), (conv.padding,) * 2, (conv.padding,) * 2))
        if conv.kernel == 1 and conv.stride == 1:
            accumulator = np.matmul(weight, x.reshape(batch, conv.in_channels, -1))
        else:
            windows = np.lib.stride_tricks.sliding_window_view(x, (conv.kernel, conv.kernel), axis=(2, 3))
            windows = windows[:, :, :: conv.stride, :: conv.stride][:, :, :size, :size]
            patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(batch, size * size, -1)
            accumulator = np.matmul(weight, patches.transpose(0, 2, 1))
        accumulator = accumulator.astype(np.int64) + plan.bias.astype(np.int64)[:, None]
        out = multiply_by_quantized_multiplier(accumulator, plan.multiplier.astype(np.int64)[:, None],
                                               plan.shift.astype(np.int64)[:, None])
        zero_point = self._zero_point(plan.output)
        low = zero_point if conv.relu else -128
        out = np.clip(out + zero_point, max(low, -128), 127)
        return out.astype(np.int8).reshape(batch, conv.out_channels, size, size)

    def _add(self, first: np.ndarray, second: np.ndarray, fire: Fire) -> np.ndarray:
        plan = self.quantization.additions[fire.name]
        a = (first.astype(np.int64) - self._zero_point(plan.first)) << ADD_LEFT_SHIFT
        b = (second.astype(np.int64) - self._zero_point(plan.second)) << ADD_LEFT_SHIFT
        total = (multiply_by_quantized_multiplier(a, plan.first_multiplier, plan.first_shift)
                 + multiply_by_quantized_multiplier(b, plan.second_multiplier, plan.second_shift))
        out = multiply_by_quantized_multiplier(total, plan.output_multiplier, plan.output_shift)
        return np.clip(out + self._zero_point(plan.output), -128, 127).astype(np.int8)

    @staticmethod
    def _max_pool(q: np.ndarray, pool: MaxPool) -> np.ndarray:
        reach = (pool.out_size - 1) * pool.stride + pool.kernel
        extra = max(0, reach - pool.in_size)
        if extra:
            q = np.pad(q, ((0, 0), (0, 0), (0, extra), (0, extra)), constant_values=-128)
        windows = np.lib.stride_tricks.sliding_window_view(q, (pool.kernel, pool.kernel), axis=(2, 3))
        return windows[:, :, :: pool.stride, :: pool.stride][:, :, : pool.out_size, : pool.out_size].max(axis=(4, 5))

    def integer_logits(self, q: np.ndarray) -> np.ndarray:
        """int8 input [N, C, H, W] -> int32 [N, classes]: sums over positions of ``q - zero_point``."""
        q = np.asarray(q)
        if q.dtype != np.int8:
            raise ValueError(f"integer_logits takes int8 input, got {q.dtype}")
        return self.walk(q, self._convolve)

    def walk(self, q: np.ndarray, convolve) -> np.ndarray:
        """The network over int8 ``q`` with ``convolve(q, conv)`` running every convolution (a hook for
        `squeezenet.int8.correction`, which sets each layer's bias just before the layer runs)."""
        for operation in self.network.operations:
            if isinstance(operation, Conv):
                q = convolve(q, operation)
            elif isinstance(operation, MaxPool):
                q = self._max_pool(q, operation)
            elif isinstance(operation, Fire):
                squeezed = convolve(q, operation.squeeze)
                out = np.concatenate([convolve(squeezed, operation.expand1x1),
                                      convolve(squeezed, operation.expand3x3)], axis=1)
                if isinstance(operation.bypass, Conv):
                    out = self._add(out, convolve(q, operation.bypass), operation)
                elif operation.bypass == "identity":
                    out = self._add(out, q, operation)
                q = out
            elif isinstance(operation, GlobalAveragePool):
                centered = q.astype(np.int64) - self._zero_point(self._logits_tensor)
                q = centered.sum(axis=(2, 3)).astype(np.int32)
            else:
                raise AssertionError(f"no int8 kernel for {operation!r}")
        return q
