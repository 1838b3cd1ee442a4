"""int8 quantization: the integer primitives exactly, then the engine and its QDQ export on real CIFAR photos."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest

from squeezenet import runtime_numpy
from squeezenet.compress.sqz import read_sqz
from squeezenet.export.graph import build_network
from squeezenet.export.photos import photo_batch
from squeezenet.int8 import DEFAULT_BIAS_CORRECTION, Int8Model, calibrate, correct_biases, quantize_model
from squeezenet.int8.arithmetic import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_power_of_two,
    saturating_rounding_doubling_high_multiply,
)
from squeezenet.int8.calibration import TensorStatistics
from squeezenet.int8.quantize import ActivationQuantization
from squeezenet.int8.ranges import RANGE_RULES, activation_range
from squeezenet.runtime_numpy import NumpyModel

REPO = Path(__file__).resolve().parents[1]
CIFAR_MODEL = REPO / "results" / "cifar10" / "squeezenet_cifar_dc8bit_ans.sqz"


# gemmlowp's C, transcribed literally with Python integers: the specification the NumPy forms must meet.
def _literal_high_multiply(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    product = a * b
    nudge = (1 << 30) if product >= 0 else 1 - (1 << 30)
    total = product + nudge
    return abs(total) // (1 << 31) * (1 if total >= 0 else -1)  # C division truncates toward zero


def _literal_divide(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def test_quantize_multiplier_hand_cases():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.75) == (3 << 29, 0)
    assert quantize_multiplier(0.1) == (1717986918, -3)  # round(0.8 * 2**31), 0.1 = 0.8 * 2**-3
    assert quantize_multiplier(1 - 2.0**-33) == (1 << 30, 1)  # the fraction rounds up to 2**31: halved
    assert quantize_multiplier(2.0**-40) == (0, 0)
    assert quantize_multiplier(0.0) == (0, 0)
    with pytest.raises(ValueError, match="non-negative"):
        quantize_multiplier(-0.5)


def test_high_multiply_hand_cases_and_saturation():
    cases = {(1 << 30, 1 << 30): 1 << 29, (INT32_MIN, INT32_MIN): INT32_MAX, (INT32_MIN, INT32_MAX): -INT32_MAX,
             (1, 1 << 30): 1, (-1, 1 << 30): 0, (-3, 1 << 30): -1, (3, 1 << 30): 2}
    for (a, b), expected in cases.items():
        assert int(saturating_rounding_doubling_high_multiply(a, b)) == expected, (a, b)


def test_rounding_divide_rounds_ties_away_from_zero():
    cases = {(5, 1): 3, (-5, 1): -3, (-6, 2): -2, (-7, 2): -2, (-5, 2): -1, (6, 2): 2, (-9, 0): -9, (7, 0): 7}
    for (x, exponent), expected in cases.items():
        assert int(rounding_divide_by_power_of_two(x, exponent)) == expected, (x, exponent)
    with pytest.raises(ValueError, match="exponent"):
        rounding_divide_by_power_of_two(4, 32)


def test_vector_forms_equal_gemmlowp_literally():
    generator = random.Random(0)
    edges = [INT32_MIN, INT32_MIN + 1, -(1 << 30), -1, 0, 1, 1 << 30, INT32_MAX]
    a = edges + [generator.randint(INT32_MIN, INT32_MAX) for _ in range(3000)]
    b = edges + [generator.randint(INT32_MIN, INT32_MAX) for _ in range(3000)]
    got = saturating_rounding_doubling_high_multiply(np.array(a), np.array(b))
    assert got.tolist() == [_literal_high_multiply(x, y) for x, y in zip(a, b)]
    exponents = [generator.randint(0, 31) for _ in a]
    got = rounding_divide_by_power_of_two(np.array(a), np.array(exponents))
    assert got.tolist() == [_literal_divide(x, e) for x, e in zip(a, exponents)]


def test_multiply_by_quantized_multiplier_hand_cases():
    multiplier, shift = quantize_multiplier(0.25)
    assert int(multiply_by_quantized_multiplier(6, multiplier, shift)) == 2  # 1.5 -> 2
    assert int(multiply_by_quantized_multiplier(-6, multiplier, shift)) == -2  # -1.5 -> -2, away from zero
    assert int(multiply_by_quantized_multiplier(-5, multiplier, shift)) == -1  # -1.25 -> -1
    multiplier, shift = quantize_multiplier(3.0)
    assert int(multiply_by_quantized_multiplier(-1000, multiplier, shift)) == -3000
    # A left shift that would overflow int32 saturates (TFLite leaves it undefined):
    # 2**30 << 2 -> INT32_MAX, then (INT32_MAX * 3 * 2**29 + 2**30) >> 31 = 3 * 2**29 - 1.
    assert int(multiply_by_quantized_multiplier(1 << 30, *quantize_multiplier(3.0))) == 3 * (1 << 29) - 1


def test_activation_quantization_from_range():
    assert ActivationQuantization.from_range(0.0, 2.55, True) == ActivationQuantization(float(np.float32(0.01)), -128)
    signed = ActivationQuantization.from_range(-1.0, 1.55, False)
    assert signed.zero_point == -28 and signed.scale == pytest.approx(0.01)


def test_range_rules_clip_an_outlier_and_keep_zero():
    statistics = TensorStatistics(nonnegative=True)
    values = np.abs(np.random.default_rng(0).normal(0.0, 1.0, 200_000)).astype(np.float32)
    values[:50_000] = 0.0  # ReLU zeros
    values[-1] = 40.0  # one outlier
    statistics.add(values[:100_000])
    statistics.add(values[100_000:])  # grows the histogram: R doubles
    assert statistics.count == 200_000 and statistics.histogram.sum() == 200_000
    ranges = {rule: activation_range(statistics, rule) for rule in RANGE_RULES}
    assert ranges["minmax"] == (0.0, 40.0)
    for rule in ("percentile", "entropy"):
        low, high = ranges[rule]
        assert low == 0.0 and 2.0 < high < 10.0, (rule, high)
    # Squared error keeps a lone outlier when clipping it costs more than the finer step saves.
    assert ranges["mse"][0] == 0.0 and 2.0 < ranges["mse"][1] <= 40.0


@pytest.fixture(scope="module")
def cifar(cifar_train):
    spec, layers, _ = read_sqz(CIFAR_MODEL)
    images, labels = photo_batch(cifar_train, "cifar", 32, 64)
    network = build_network(spec)
    calibration = calibrate(network, layers, images[::2])
    return spec, network, layers, calibration, images[1::2], labels[1::2]


def test_weights_are_codebook_values_on_a_per_channel_grid(cifar):
    _, network, layers, calibration, _, _ = cifar
    quantization = quantize_model(network, layers, calibration, bias_correction=False)
    plan, dense = quantization.convolutions[1], layers[1].dense_weight()
    largest = np.abs(plan.weight.reshape(len(plan.weight), -1)).max(axis=1)
    assert set(largest.tolist()) <= {0, 127}
    step = plan.weight_scale[:, None, None, None]
    assert np.all(np.abs(plan.weight * step - dense) <= step / 2 + 1e-7)


def test_convolution_is_exact_integer_arithmetic(cifar):
    """The engine's float matrix product equals a plain int64 sum, then the fixed-point rescale."""
    _, network, layers, calibration, images, _ = cifar
    engine = Int8Model(network, quantize_model(network, layers, calibration))
    stem = network.operations[0]
    plan = engine.quantization.convolutions[stem.layer]
    q = engine.quantize_input(images[:4])
    x = np.pad(q.astype(np.int64) - engine.input_quantization.zero_point, ((0, 0), (0, 0), (1, 1), (1, 1)))
    accumulator = np.zeros((4, stem.out_channels, stem.out_size, stem.out_size), dtype=np.int64)
    for row in range(3):
        for column in range(3):
            window = x[:, :, row:row + stem.out_size, column:column + stem.out_size]
            accumulator += np.einsum("oi,nihw->nohw", plan.weight[:, :, row, column].astype(np.int64), window)
    accumulator += plan.bias.astype(np.int64)[None, :, None, None]
    expected = multiply_by_quantized_multiplier(accumulator, plan.multiplier.astype(np.int64)[None, :, None, None],
                                                plan.shift.astype(np.int64)[None, :, None, None])
    expected = np.clip(expected + engine.quantization.activations[stem.name].zero_point, -128, 127)
    assert np.array_equal(engine._convolve(q, stem), expected.astype(np.int8))


@pytest.mark.parametrize("bias_correction", [False, True])
def test_int8_engine_agrees_with_fp32_on_real_photos(cifar, bias_correction):
    _, network, layers, calibration, images, labels = cifar
    engine = Int8Model(network, quantize_model(network, layers, calibration, bias_correction=bias_correction))
    logits, reference = engine(images), NumpyModel(network, layers)(images)
    assert np.mean(logits.argmax(1) == reference.argmax(1)) >= 0.9
    assert np.abs(logits - reference).max() < 0.1 * np.abs(reference).max()
    sums = engine.integer_logits(engine.quantize_input(images))
    assert sums.dtype == np.int32
    assert np.array_equal(logits, (sums * engine.logits_scale).astype(np.float32))


def test_identity_bypass_adds_in_integers(cifar_train):
    spec, layers, _ = read_sqz(CIFAR_MODEL)
    fires = [dict(row) for row in spec["fires"]]
    for row, previous in zip(fires[1:], fires):
        if row["expand1x1"] + row["expand3x3"] == previous["expand1x1"] + previous["expand3x3"]:
            row["bypass"] = "identity"
    spec = {**spec, "fires": fires}
    network = build_network(spec)
    images, _ = photo_batch(cifar_train, "cifar", 32, 32, offset=3)
    engine = Int8Model(network, quantize_model(network, layers, calibrate(network, layers, images[::2])))
    assert engine.quantization.additions, "the spec has no identity bypass"
    logits, reference = engine(images[1::2]), NumpyModel(network, layers)(images[1::2])
    assert np.mean(logits.argmax(1) == reference.argmax(1)) >= 0.85
    assert np.abs(logits - reference).max() < 0.15 * np.abs(reference).max()


def test_qdq_onnx_runs_in_onnxruntime_and_matches_the_engine(cifar, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from squeezenet.int8.onnx_qdq import export_onnx_qdq

    spec, network, layers, calibration, images, _ = cifar
    quantization = quantize_model(network, layers, calibration)
    path = tmp_path / "cifar_int8_qdq.onnx"
    export_onnx_qdq(spec, layers, quantization, path, metadata={"preprocess": "cifar"})
    reference = Int8Model(network, quantization)(images)
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    as_written = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    fused = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert fused.get_modelmeta().custom_metadata_map["preprocess"] == "cifar"
    # Both the QDQ graph as written and onnxruntime's fused uint8 kernels (no int16 saturation).
    for session in (as_written, fused):
        logits = session.run(["logits"], {"input": images})[0]
        assert logits.shape == reference.shape
        assert np.mean(logits.argmax(1) == reference.argmax(1)) >= 0.95
        assert np.abs(logits - reference).max() < 0.05 * np.abs(reference).max()


def test_the_classifier_output_keeps_its_full_range(cifar):
    _, network, layers, calibration, _, _ = cifar
    classifier = network.operations[-2].name
    statistics = calibration.statistics[classifier]
    for rule in RANGE_RULES:
        activation = quantize_model(network, layers, calibration, range_rule=rule).activations[classifier]
        assert activation == ActivationQuantization.from_range(*activation_range(statistics, "minmax"), True)
    clipped = quantize_model(network, layers, calibration, range_rule="mse", logits_range_rule=None)
    assert clipped.activations[classifier] == ActivationQuantization.from_range(*activation_range(statistics, "mse"), True)


def test_mismatched_quantization_is_refused(cifar, tmp_path):
    spec, network, layers, calibration, _, _ = cifar
    quantization = quantize_model(network, layers, calibration)
    partial = dataclasses.replace(quantization, convolutions={0: quantization.convolutions[0]})
    with pytest.raises(ValueError, match="does not cover"):
        Int8Model(network, partial)
    with pytest.raises(ValueError, match="unknown range rule"):
        quantize_model(network, layers, calibration, range_rule="median")


def test_sequential_correction_matches_each_layer_mean_to_fp32(cifar_train):
    """Every layer but the classifier, fed by the corrected int8 layers before it, has fp32's mean
    pre-activation per channel on the calibration photos, to half an accumulator step."""
    spec, layers, _ = read_sqz(CIFAR_MODEL)
    images, _ = photo_batch(cifar_train, "cifar", 32, 4, offset=5)
    default = Int8Model.calibrated(spec, layers, images)
    assert DEFAULT_BIAS_CORRECTION == default.quantization.bias_correction == "sequential"
    network = default.network
    calibration = calibrate(network, layers, images)
    weights_only = quantize_model(network, layers, calibration)
    assert default.quantization.activations == weights_only.activations
    classifier = network.operations[-2]
    changed = 0
    for layer, plan in default.quantization.convolutions.items():
        before = weights_only.convolutions[layer]
        assert np.array_equal(plan.weight, before.weight) and np.array_equal(plan.multiplier, before.multiplier)
        changed += int(np.abs(plan.bias.astype(np.int64) - before.bias).max() > 10)
        if layer == classifier.layer:  # keeps Nagel et al.'s correction
            assert np.array_equal(plan.bias, before.bias)
    assert changed > 0

    errors = {}  # layer -> |int8 - fp32| mean pre-activation per channel, in accumulator steps

    def convolve(q, conv):
        plan = default.quantization.convolutions[conv.layer]
        input_ = default.quantization.activations[plan.input]
        step = input_.scale * plan.weight_scale.astype(np.float64)
        x = (q.astype(np.float64) - input_.zero_point) * input_.scale
        weight = plan.weight.astype(np.float64) * plan.weight_scale.astype(np.float64)[:, None, None, None]
        int8 = runtime_numpy.convolve(x, weight, plan.bias * step, dataclasses.replace(conv, relu=False))
        dense = layers[conv.layer].dense_weight().reshape(conv.out_channels, -1)
        fp32 = dense @ calibration.mean_inputs[conv.layer].reshape(-1) + layers[conv.layer].bias
        errors[conv.layer] = np.abs(int8.mean(axis=(0, 2, 3)) - fp32) / step
        return default._convolve(q, conv)

    default.walk(default.quantize_input(images), convolve)
    del errors[classifier.layer]
    assert len(errors) == len(network.convolutions()) - 1
    assert all(np.all(error <= 0.5 + 1e-6) for error in errors.values())
    with pytest.raises(ValueError, match="calibration photos"):
        correct_biases(default, layers, calibration, images[:2])
    with pytest.raises(ValueError, match="unknown bias correction"):
        Int8Model.calibrated(spec, layers, images, bias_correction="adaround")
