"""Sequential bias correction: each layer's int32 bias absorbs its channels' mean error, inputs included.

Nagel et al. 2019 ("Data-Free Quantization Through Weight Equalization and Bias Correction",
Sec. 4.2, empirical variant; `squeezenet.int8.quantize`) correct a bias for the error of the
quantized weights alone, ``E[(W_int8 - W) x]`` with ``x`` the fp32 input. The int8 network also
feeds each layer inputs that differ from fp32's: rounded, clipped by the range rule (rule ``mse``
clips hidden ReLU outputs hard, which lowers their means) and carrying the errors of every layer
before. So, as the sequential variants of bias correction do, we run the int8 network over the
calibration photos one layer at a time, each layer fed by the already corrected layers before it,
and choose each output channel's bias so that its mean pre-activation equals fp32's on the same
photos:

    bias[c] = round(E[W x + b][c] / (input_scale * weight_scale[c]) - E[W_int8 (q - zero_point)][c])

Both means are linear in the mean input window (padding included), so the fp32 one comes from
`Calibration.mean_inputs` and the int8 one from the mean of the centred int8 windows: the photos
must be the calibration's own, in any order. Like Nagel et al. we match the mean before ReLU.
The weights, scales and requantization multipliers are untouched; only the int32 biases change.

Deviation: the classifier (the convolution before global average pooling) keeps the bias it came
with (Nagel et al.'s, by default). Its ReLU zeroes most of its outputs, so its mean pre-activation
is mostly made of values that never reach the logits; matching it raised the KL divergence of the
int8 logits from fp32 on held-back calibration photos of ``results/imagenet-small.sqz`` (80 fit, 70
scored: 0.0117, against 0.0107 without correcting it).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.graph import Conv
from squeezenet.int8.arithmetic import round_half_away_from_zero
from squeezenet.int8.calibration import Calibration, mean_window
from squeezenet.int8.quantize import Quantization, int32_bias

__all__ = ["correct_biases"]

_CHUNK = 8  # photos per window mean: a padded float copy of conv1's input is ~0.6 MB a photo


def correct_biases(model, layers: list[SparseLayer], calibration: Calibration, images: np.ndarray) -> Quantization:
    """``model``'s quantization (an `Int8Model`) with the bias of every convolution but the classifier
    corrected in network order on ``images``, the float32 photos ``calibration`` was recorded on."""
    images = np.asarray(images, dtype=np.float32)
    if len(images) != calibration.images:
        raise ValueError(f"bias correction needs the {calibration.images} calibration photos, got {len(images)}")
    if calibration.network != model.network:
        raise ValueError("the calibration was recorded on a different network")
    # A private copy: the walk below replaces each plan just before its layer runs.
    corrected = type(model)(model.network, dataclasses.replace(
        model.quantization, bias_correction="sequential", convolutions=dict(model.quantization.convolutions)))
    plans, activations = corrected.quantization.convolutions, corrected.quantization.activations
    classifier = model.network.operations[-2]

    def convolve(q: np.ndarray, conv: Conv) -> np.ndarray:
        if conv == classifier:
            return corrected._convolve(q, conv)
        plan = plans[conv.layer]
        zero_point = activations[plan.input].zero_point
        window = sum(mean_window(q[start:start + _CHUNK].astype(np.float32) - np.float32(zero_point), conv)
                     * len(q[start:start + _CHUNK]) for start in range(0, len(q), _CHUNK)) / len(q)
        layer = layers[conv.layer]
        fp32_mean = (layer.dense_weight().reshape(conv.out_channels, -1).astype(np.float64)
                     @ calibration.mean_inputs[conv.layer].reshape(-1) + np.asarray(layer.bias, dtype=np.float64))
        int8_mean = plan.weight.reshape(conv.out_channels, -1).astype(np.float64) @ window.reshape(-1)
        accumulator_scale = activations[plan.input].scale * plan.weight_scale.astype(np.float64)
        levels = round_half_away_from_zero(fp32_mean / accumulator_scale - int8_mean)
        plans[conv.layer] = dataclasses.replace(plan, bias=int32_bias(conv, levels))
        return corrected._convolve(q, conv)

    corrected.walk(corrected.quantize_input(images), convolve)
    return corrected.quantization
