"""Label-free calibration: sensitivity, rate-distortion bit allocation, centroid distillation, presets."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from squeezenet.compress.allocation import allocate_bits, measure_sensitivity
from squeezenet.compress.calibration import calibration_split
from squeezenet.compress.distill import (
    DistillConfig,
    distill,
    entropy_bytes,
    kl_divergence,
    random_crops,
    teacher_logits,
)
from squeezenet.compress.presets import COMPRESSION_RECIPES
from squeezenet.compress.quantize import quantize_layer, quantize_model, round_to_float16
from squeezenet.compress.sparse import SparseLayer
from squeezenet.data import load_rgb
from squeezenet.models import squeezenet_cifar, weight_layers

from conftest import IMAGENET_SAMPLES as PHOTOS

# Small models, small batches: one thread (two ran the distillation test 10x slower on a shared machine).
pytestmark = pytest.mark.usefixtures("one_thread")


def small_photos(count: int, side: int = 36) -> torch.Tensor:
    """The first ``count`` ImageNet sample photos as uint8 [count, 3, side, side]."""
    paths = sorted(PHOTOS.glob("*.JPEG"))[:count]
    if len(paths) < count:
        pytest.fail(f"test data missing: {count} photos wanted in {PHOTOS}")
    transform = v2.Compose([v2.Resize((side, side)), v2.ToImage()])
    return torch.stack([transform(load_rgb(path)) for path in paths])


def to_input(crops: torch.Tensor) -> torch.Tensor:
    return crops.to(torch.float32) / 64.0 - 2.0


def test_kl_divergence_is_zero_for_equal_outputs_and_matches_hand_value():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    assert float(kl_divergence(logits, logits)) == pytest.approx(0.0, abs=1e-7)
    teacher = torch.log(torch.tensor([[0.5, 0.5]]))
    student = torch.log(torch.tensor([[0.25, 0.75]]))
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert float(kl_divergence(student, teacher)) == pytest.approx(expected, rel=1e-6)


def test_allocate_bits_hand_checked():
    sizes = {"a": {8: 100, 6: 60, 4: 30}, "b": {8: 200, 6: 120, 4: 50}}
    distortions = {"a": {8: 0.0, 6: 0.1, 4: 0.5}, "b": {8: 0.01, 6: 0.05, 4: 0.6}}
    assert allocate_bits(sizes, distortions, 0.0) == {"a": 8, "b": 8}
    # b 8->6 saves 80 bytes for 0.04 (2000/unit), then a 8->6 saves 40 for 0.1; 6->4 exceeds 0.2.
    assert allocate_bits(sizes, distortions, 0.2) == {"a": 6, "b": 6}
    # With 1.0: then b 6->4 (70 for 0.55) beats a 6->4 (30 for 0.4); a 6->4 would then exceed.
    assert allocate_bits(sizes, distortions, 1.0) == {"a": 6, "b": 4}
    assert allocate_bits(sizes, distortions, 10.0) == {"a": 4, "b": 4}


def test_allocate_bits_to_a_byte_target_hand_checked():
    sizes = {"a": {8: 100, 6: 60, 4: 30}, "b": {8: 200, 6: 120, 4: 50}}
    distortions = {"a": {8: 0.0, 6: 0.1, 4: 0.5}, "b": {8: 0.01, 6: 0.05, 4: 0.6}}
    assert allocate_bits(sizes, distortions, max_bytes=300) == {"a": 8, "b": 8}
    assert allocate_bits(sizes, distortions, max_bytes=250) == {"a": 8, "b": 6}  # 220 bytes
    # Then a 8->6 (400 bytes per unit), then b 6->4 (127 per unit) beats a 6->4 (75): 110 bytes.
    assert allocate_bits(sizes, distortions, max_bytes=150) == {"a": 6, "b": 4}
    with pytest.raises(ValueError, match="fits 50 bytes"):
        allocate_bits(sizes, distortions, max_bytes=50)


def test_allocate_bits_treats_noise_below_the_widest_width_as_free():
    sizes = {"c": {8: 100, 6: 60, 4: 30}}
    distortions = {"c": {8: 0.02, 6: 0.01, 4: 0.03}}  # running maximum: 0, 0, +0.01
    assert allocate_bits(sizes, distortions, 0.0) == {"c": 6}
    assert allocate_bits(sizes, distortions, 0.01) == {"c": 4}
    with pytest.raises(ValueError, match="same bit widths"):
        allocate_bits(sizes, {"c": {8: 0.0}}, 0.1)


def test_entropy_bytes_counts_code_and_gap_entropy_plus_tables():
    layer = SparseLayer((8,), np.array([0.0, 1.0], np.float32), np.array([1, 1, 1, 1]), np.array([0, 1, 0, 1]), np.zeros(1, np.float32))
    # codes: 0 bits; gaps: 4 symbols at 1 bit = 4 bits -> 1 byte; codebook 2 x 4, bias 1 x 4.
    assert entropy_bytes(layer) == 1 + 8 + 4


def test_sensitivity_suffix_forward_matches_full_forward():
    torch.manual_seed(0)
    model = squeezenet_cifar(num_classes=10).eval()
    inputs = to_input(small_photos(2, 32))
    reference = teacher_logits(model, inputs)
    measured = measure_sensitivity(model, inputs, reference, [2])
    assert list(measured) == [name for name, _ in weight_layers(model)]
    for name in ("features.0", "features.4.expand3x3", "classifier.1"):
        for bits in (2,):
            quantized = copy.deepcopy(model)
            module = dict(weight_layers(quantized))[name]
            with torch.no_grad():
                module.weight.copy_(quantize_layer(module.weight, bits).weight())
            expected = float(kl_divergence(teacher_logits(quantized, inputs), reference))
            assert measured[name][bits] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    # The model itself is left as it was.
    torch.testing.assert_close(teacher_logits(model, inputs), reference)


def test_distill_brings_a_two_bit_model_closer_to_its_teacher():
    torch.manual_seed(0)
    teacher = squeezenet_cifar(num_classes=10).eval()
    with torch.no_grad():
        for _, module in weight_layers(teacher):
            module.weight[module.weight.abs() < 0.02] = 0.0  # prune, so zeros must survive
        teacher.classifier[1].weight.mul_(30.0)  # confident outputs, as a trained model's
    photos = small_photos(8)
    held_out = to_input(photos[:, :, 2:34, 2:34])
    reference = teacher_logits(teacher, held_out)
    quantizations = quantize_model(teacher, 2)
    plain = copy.deepcopy(teacher)
    with torch.no_grad():
        for name, module in weight_layers(plain):
            module.weight.copy_(quantizations[name].weight())
    before = float(kl_divergence(teacher_logits(plain, held_out), reference))
    config = DistillConfig(epochs=4, batch_size=4, learning_rate=0.01, train_bias=True)
    student, trained, history = distill(teacher, quantizations, photos, to_input, config, crop_size=32)
    after = float(kl_divergence(teacher_logits(student, held_out), reference))
    assert len(history) == 4 and after < 0.5 * before
    for name, module in weight_layers(student):
        assert torch.equal(trained[name].codes, quantizations[name].codes)
        assert torch.equal(module.weight.detach(), trained[name].weight())
        assert torch.equal(module.weight == 0, dict(weight_layers(teacher))[name].weight == 0)
        assert not hasattr(module, "parametrizations")
    biases = [(module.bias, dict(weight_layers(teacher))[name].bias) for name, module in weight_layers(student)]
    assert torch.equal(*biases[-1])  # the class biases are left as they were
    assert any(not torch.equal(trained_bias, original) for trained_bias, original in biases[:-1])


def test_random_crops_are_crops_of_their_image_or_its_mirror():
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.uint8).reshape(2, 3, 6, 6)
    crops = random_crops(images, 4, torch.Generator().manual_seed(1))
    assert crops.shape == (2, 3, 4, 4)
    for image, crop in zip(images, crops):
        windows = [image[:, t : t + 4, l : l + 4] for t in range(3) for l in range(3)]
        assert any(torch.equal(crop, w) or torch.equal(crop, w.flip(-1)) for w in windows)
    with pytest.raises(ValueError, match="smaller"):
        random_crops(images, 7, torch.Generator())


def test_calibration_split_alternates_sorted_names():
    paths = [Path(name) for name in ("c.JPEG", "a.JPEG", "d.JPEG", "b.JPEG", "e.JPEG")]
    calibration, evaluation = calibration_split(paths)
    assert [paths[i].name for i in calibration] == ["a.JPEG", "c.JPEG", "e.JPEG"]
    assert [paths[i].name for i in evaluation] == ["b.JPEG", "d.JPEG"]


def test_round_to_float16_makes_codebooks_and_biases_exact_halves():
    torch.manual_seed(0)
    model = squeezenet_cifar(num_classes=10)
    rounded = round_to_float16(model, quantize_model(model, 4))
    for name, module in weight_layers(model):
        codebook = rounded[name].codebook
        assert torch.equal(codebook.half().float(), codebook) and float(codebook[0]) == 0.0
        assert torch.equal(module.bias.half().float(), module.bias)
        assert torch.equal(module.weight, rounded[name].weight())


def test_imagenet_small_preset_is_defined():
    recipe = COMPRESSION_RECIPES["imagenet-small"].recipe
    assert recipe.allocation.candidate_bits[0] == 8 and recipe.allocation.max_bytes <= 400_000
    assert recipe.distillation.epochs > 0 and recipe.float16
