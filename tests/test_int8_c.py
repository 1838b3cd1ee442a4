"""The int8 C99 engine (squeezenet.export.c99_int8): bit-identical to the int8 reference engine.

Exact, not a tolerance: the engine's int32 sums must equal `Int8Model.integer_logits` on real
photos it was not calibrated on, and its float logits (sum * logits_scale) the reference's, bit for
bit. Compiled with gcc -std=c99 -O2 -Wall -Werror.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezenet.compress.kmeans import kmeans_1d
from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.c99.check import compile_check_binary, run_check_binary
from squeezenet.export.c99_int8 import emit_int8_model, export_c_int8
from squeezenet.export.c99_int8.check import (
    compile_int8_check_binary,
    run_int8_check_binary,
)
from squeezenet.export.compressed import compressed_model
from squeezenet.export.photos import photo_batch, photo_paths
from squeezenet.int8.reference import Int8Model
from squeezenet.models import squeezenet_cifar, weight_layers

REPO = Path(__file__).resolve().parents[1]
CIFAR_MODEL = REPO / "results" / "cifar10" / "squeezenet_cifar_dc6bit_huffman.sqz"
CALIBRATION_PHOTOS = 32
CHECK_PHOTOS = 8

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def _photos(folder: Path, preset: str, size: int, calibration: int, check: int):
    """(calibration images, check images, check labels): the check photos exclude the calibration ones."""
    used = {path for path, _ in photo_paths(folder, calibration)}
    calibration_images, _ = photo_batch(folder, preset, size, calibration)
    images, labels = photo_batch(folder, preset, size, check, offset=3, exclude=used)
    return calibration_images, images, labels


@pytest.fixture(scope="module")
def cifar_export(tmp_path_factory, cifar_train):
    folder = tmp_path_factory.mktemp("int8_c") / "out"
    calibration, images, labels = _photos(cifar_train, "cifar", 32, CALIBRATION_PHOTOS, CHECK_PHOTOS)
    report = export_c_int8(CIFAR_MODEL, folder, calibration_images=calibration,
                           command=f"squeezenet export --format c --precision int8 --weights {CIFAR_MODEL}")
    compressed = compressed_model(CIFAR_MODEL)
    reference = Int8Model.calibrated(compressed.spec, compressed.layers, calibration)  # what the export must match
    int8_binary, float_binary = folder.parent / "predict_int8", folder.parent / "predict"
    compile_int8_check_binary(folder, int8_binary)
    compile_check_binary(folder, float_binary)  # the fp32 engine's harness, unchanged
    return folder, report, reference, int8_binary, float_binary, images, labels


def test_cifar_int32_sums_are_identical_to_the_reference(cifar_export):
    _, _, reference, int8_binary, _, images, labels = cifar_export
    quantized = reference.quantize_input(images)
    sums, top1 = run_int8_check_binary(int8_binary, quantized, 10)
    expected = reference.integer_logits(quantized)
    assert np.array_equal(sums, expected)
    assert np.array_equal(top1, expected.argmax(axis=1))
    assert (top1 == labels).mean() >= 0.5  # a working classifier, not merely a consistent one
    assert expected.std(axis=1).min() > 0  # live sums, not constants


def test_cifar_float_entry_point_quantizes_and_scales_like_the_reference(cifar_export):
    _, _, reference, _, float_binary, images, _ = cifar_export
    logits = run_check_binary(float_binary, images, 10)
    expected = reference(images)
    assert np.array_equal(logits.view(np.int32), expected.view(np.int32))  # bit for bit
    assert np.array_equal(logits.argmax(axis=1), expected.argmax(axis=1))


def test_input_quantization_near_ties_matches_the_reference(cifar_export):
    """Inputs at and next to half-way points between levels (where x + 0.5f in float32 goes wrong)."""
    _, _, reference, _, float_binary, images, _ = cifar_export
    scale = np.float32(reference.input_quantization.scale)
    rng = np.random.default_rng(0)
    levels = rng.integers(-140, 140, size=images[:2].shape).astype(np.float32)
    fractions = rng.choice(np.array([0.5, -0.5, 0.49999997, -0.49999997, 0.50000006, 0.0], dtype=np.float32),
                           size=levels.shape)
    near_ties = ((levels + fractions) * scale).astype(np.float32)
    logits = run_check_binary(float_binary, near_ties, 10)
    assert np.array_equal(logits.view(np.int32), reference(near_ties).view(np.int32))


def test_cifar_memory_plan_and_flash_are_stated_in_the_header(cifar_export):
    folder, report, *_ = cifar_export
    header = (folder / "model.h").read_text()
    constants = {name: int(value) for name, value in re.findall(r"#define SQUEEZENET_(\w+) (\d+)\b", header)}
    assert constants["RAM_BYTES"] == report["ram_bytes"] == sum(report["ram_buffers"].values())
    assert constants["WEIGHT_BYTES"] == report["weight_bytes"]
    # The weights stay entropy-coded: flash for them (streams, codebooks, int32 biases) within 2% of the .sqz.
    assert report["weight_bytes"] <= 1.02 * report["model_file_bytes"]
    assert set(report["layer_forms"].values()) == {"computed"}
    # conv1 (3 -> 64 channels at 32x32) writes through its max pool, so the arena holds the largest
    # Fire stage instead: fire4's 128x16x16 input + 32x16x16 squeeze output (it too writes pooled).
    assert constants["ARENA_BYTES"] == 128 * 16 * 16 + 32 * 16 * 16 and "features.5" in report["arena_peak"]
    assert "through the max pool after them (the unpooled tensor never exists): features.0, features.5." in header
    assert constants["BAND_BYTES"] == 3 * 32 and constants["ACCUMULATOR_WORDS"] == 16 * 16
    assert report["ram_bytes"] < 48 * 1024
    source = (folder / "model.c").read_text()
    assert "malloc" not in source and "printf" not in source and "float sq_arena" not in source
    assert set(re.findall(r"#include <(\w+)\.h>", source)) == {"stddef", "stdint", "string"}


def test_a_ram_budget_too_small_is_refused_naming_the_largest_buffer(tmp_path, cifar_train):
    calibration, _ = photo_batch(cifar_train, "cifar", 32, 2)
    folder = tmp_path / "out"
    with pytest.raises(ValueError) as raised:
        export_c_int8(CIFAR_MODEL, folder, calibration_images=calibration, command="test", ram_budget=32 * 1024)
    message = str(raised.value)
    assert "\n" not in message and "32768" in message
    assert "features.5" in message and "40960 bytes" in message
    assert not folder.exists()


def test_rans_streams_round_trip_near_the_entropy():
    """Our rANS coder (decoded here as templates/stream.c decodes it) on a peaked alphabet, like the
    relative indices it is chosen for, and on a one-symbol alphabet (a payload of the state alone)."""
    from squeezenet.export.c99_int8.rans import rans_encode, rans_frequencies

    def decode(payload: bytes, frequencies: np.ndarray, count: int) -> list[int]:
        cumulative = np.concatenate([[0], np.cumsum(frequencies)])
        state, position, symbols = int.from_bytes(payload[:4], "little"), 4, []
        for _ in range(count):
            slot = state & 0x3FFF
            symbol = int(np.searchsorted(cumulative, slot, side="right")) - 1
            state = int(frequencies[symbol]) * (state >> 14) + slot - int(cumulative[symbol])
            while state < 1 << 16:
                state = state << 16 | int.from_bytes(payload[position : position + 2], "little")
                position += 2
            symbols.append(symbol)
        assert position == len(payload) and state == 1 << 16  # every word read, the encoder's start state
        return symbols

    symbols = np.random.default_rng(0).geometric(0.8, 20000) - 1
    frequencies = rans_frequencies(symbols)
    payload = rans_encode(symbols, frequencies)
    assert decode(payload, frequencies, len(symbols)) == symbols.tolist()
    counts = np.bincount(symbols)
    counts = counts[counts > 0]
    entropy_bytes = -(counts * np.log2(counts / len(symbols))).sum() / 8
    assert len(payload) < 1.01 * entropy_bytes
    assert rans_encode(np.zeros(50, np.int64), rans_frequencies(np.zeros(50, np.int64))) == (1 << 16).to_bytes(4, "little")


def _random_sparse_layers(model, *, density: float, codebook_size: int, max_gap: int,
                          codebook_dtype=np.float32) -> list[SparseLayer]:
    """Pruned, weight-shared layers of ``model``: the largest ``density`` of each layer, scaled up so
    that the signal survives to the logits; codebook values rounded to ``codebook_dtype``."""
    layers = []
    for index, (_, module) in enumerate(weight_layers(model)):
        weight = module.weight.detach().numpy()
        weight = np.where(np.abs(weight) >= np.quantile(np.abs(weight), 1 - density), weight * 2.0, 0.0)
        values = weight[weight != 0].astype(np.float32)
        # A layer with fewer weights than codebook entries gets an even grid instead of k-means.
        centroids = (kmeans_1d(values, codebook_size - 1) if len(values) >= codebook_size - 1
                     else np.linspace(values.min(), values.max(), codebook_size - 1))
        codebook = np.concatenate([[0.0], centroids]).astype(codebook_dtype)
        bias = np.random.default_rng(index).uniform(-0.1, 0.1, weight.shape[0]).astype(np.float32)
        layers.append(SparseLayer.from_dense(weight.astype(np.float32), bias, codebook.astype(np.float32),
                                             max_gap=max_gap))
    return layers


@pytest.mark.parametrize("bypass, max_gap, codebook_size, codebook_dtype",
                         [("simple", 15, 16, np.float32), ("complex", 255, 300, np.float16)])
def test_bypass_wide_gaps_and_the_table_fallbacks_are_bit_identical(tmp_path, cifar_train, bypass, max_gap,
                                                                    codebook_size, codebook_dtype):
    """Fire bypasses (TFLite ADD), 8-bit relative indices, a codebook over 256 entries (16-bit Huffman
    symbols), float16 codebooks, and two layers whose int8 weights (negated) or rescaling (multiplier
    - 1) follow another rule than the engine computes: they must fall back to tables and stay exact.
    Paths the committed model does not take."""
    torch.manual_seed(2)
    model = squeezenet_cifar(bypass=bypass, base_e=32, incr_e=32).eval()
    layers = _random_sparse_layers(model, density=0.4, codebook_size=codebook_size, max_gap=max_gap,
                                   codebook_dtype=codebook_dtype)
    calibration, images, _ = _photos(cifar_train, "cifar", 32, 8, 4)
    reference = Int8Model.calibrated(model.spec.to_dict(), layers, calibration)
    plans = dict(reference.quantization.convolutions)
    plans[3] = dataclasses.replace(plans[3], weight=-plans[3].weight)
    plans[5] = dataclasses.replace(plans[5], multiplier=plans[5].multiplier - 1)
    reference = Int8Model(reference.network, dataclasses.replace(reference.quantization, convolutions=plans))
    code = emit_int8_model(reference, layers, banner=["test"], preprocess="cifar")
    forms = list(code.layer_forms.values())
    assert forms[3] == "level table" and forms[5] == "rescale table"
    assert forms.count("computed") == len(forms) - 2
    assert ("static const uint16_t weights_features_0_codebook" in code.source) == (codebook_dtype == np.float16)
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "model.c").write_text(code.source)
    (folder / "model.h").write_text(code.header)
    assert bool(re.search(r"static const uint16_t \w+_codes_symbols", code.source)) == (codebook_size > 256)
    binary = tmp_path / "predict_int8"
    compile_int8_check_binary(folder, binary)
    quantized = reference.quantize_input(images)
    sums, _ = run_int8_check_binary(binary, quantized, 10)
    expected = reference.integer_logits(quantized)
    assert expected.std(axis=1).min() > 0
    assert np.array_equal(sums, expected)


IMAGENET_RAM_BUDGET = 512 * 1024


def _imagenet_photos(imagenet_samples: Path, calibration: int, check: int):
    """As `_photos`, cached under build/ (git-ignored): decoding 227x227 JPEGs is slow on loaded cores."""
    cache = REPO / "build" / "test_int8_c" / f"imagenet_{calibration}_{check}.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return stored["calibration"], stored["images"], stored["labels"]
    photos = _photos(imagenet_samples, "caffe", 227, calibration, check)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, calibration=photos[0], images=photos[1], labels=photos[2])
    return photos


def test_published_net_plan_fits_512_kb(tmp_path, published_net, imagenet_samples):
    """The published ImageNet model's static plan (header only, nothing compiled): conv1 and fire4
    write through their max pools, so fire4's 128x55x55 input + 32x55x55 squeeze output sizes the
    arena instead of conv1's 3x227x227 input + 96x111x111 output."""
    calibration, _, _ = _imagenet_photos(imagenet_samples, 4, 2)
    folder = tmp_path / "out"
    report = export_c_int8(published_net, folder, calibration_images=calibration[:1], command="test",
                           ram_budget=IMAGENET_RAM_BUDGET)
    header = (folder / "model.h").read_text()
    constants = {name: int(value) for name, value in re.findall(r"#define SQUEEZENET_(\w+) (\d+)\b", header)}
    assert constants["RAM_BYTES"] == report["ram_bytes"] == sum(report["ram_buffers"].values()) <= IMAGENET_RAM_BUDGET
    assert constants["ARENA_BYTES"] == 128 * 55 * 55 + 32 * 55 * 55 and "features.5" in report["arena_peak"]
    assert "(the unpooled tensor never exists): features.0, features.5." in header
    assert constants["ACCUMULATOR_WORDS"] == 55 * 55  # conv1 keeps one 111-wide row, not its 111x111 plane
    assert constants["BAND_BYTES"] == 3 * 111 and constants["STACK_BYTES"] > 0


@pytest.mark.slow
def test_published_net_is_bit_identical_and_states_its_ram(tmp_path, published_net, imagenet_samples):
    """The published ImageNet model at 227x227, its conv1 and fire4 written through their max pools
    (about a minute on 2 loaded cores: `make test-slow`)."""
    calibration, images, _ = _imagenet_photos(imagenet_samples, 4, 2)
    folder = tmp_path / "out"
    report = export_c_int8(published_net, folder, calibration_images=calibration, command="test",
                           ram_budget=IMAGENET_RAM_BUDGET)
    assert report["ram_buffers"]["arena"] == 128 * 55 * 55 + 32 * 55 * 55
    assert report["weight_bytes"] < report["model_file_bytes"]
    compressed = compressed_model(published_net)
    reference = Int8Model.calibrated(compressed.spec, compressed.layers, calibration)
    binary = tmp_path / "predict_int8"
    compile_int8_check_binary(folder, binary)
    quantized = reference.quantize_input(images)
    sums, top1 = run_int8_check_binary(binary, quantized, 1000)
    assert np.array_equal(sums, reference.integer_logits(quantized))
    assert np.array_equal(top1, sums.argmax(axis=1))
