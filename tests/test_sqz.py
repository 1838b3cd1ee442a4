"""The .sqz file: bit-exact round trips, the published model re-encoded (hostile files: test_forged_files.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.compress.entropy import CODERS
from squeezenet.compress.pipeline import CompressionRecipe, compress_model
from squeezenet.compress.quantize import quantize_model, to_sparse_layer
from squeezenet.compress.sqz import (
    decode_sqz,
    encode_sqz,
    read_sqz,
    read_sqz_model,
    sqz_breakdown,
    write_sqz,
)
from squeezenet.models import squeezenet_cifar, weight_layers

pytestmark = pytest.mark.usefixtures("one_thread")


PUBLISHED_BYTES = 675_763


def tiny_model(base_e: int = 8, squeeze_ratio: float = 0.25, pct3x3: float = 0.5, num_classes: int = 10, seed: int = 0):
    torch.manual_seed(seed)
    return squeezenet_cifar(base_e=base_e, incr_e=base_e, squeeze_ratio=squeeze_ratio, pct3x3=pct3x3,
                            num_classes=num_classes).eval()


def sparse_form(model, bits, max_gap=63):
    quantizations = quantize_model(model, bits)
    layers = [to_sparse_layer(quantizations[name], module.bias, max_gap) for name, module in weight_layers(model)]
    return quantizations, layers


@settings(max_examples=20, deadline=None)
@given(
    base_e=st.integers(4, 24),
    pct3x3=st.sampled_from([0.25, 0.5, 0.75]),
    sparsity=st.floats(0.0, 0.97),
    bits=st.lists(st.integers(1, 8), min_size=26, max_size=26),
    coder=st.sampled_from(CODERS),
    max_gap=st.sampled_from([1, 3, 15, 255, 4095]),
    seed=st.integers(0, 1000),
)
def test_decode_reproduces_quantized_weights_bit_for_bit(base_e, pct3x3, sparsity, bits, coder, max_gap, seed):
    model = tiny_model(base_e, pct3x3=pct3x3, seed=seed)
    with torch.no_grad():
        for _, module in weight_layers(model):
            module.weight.mul_(torch.rand_like(module.weight) >= sparsity)
    names = [name for name, _ in weight_layers(model)]
    quantizations, layers = sparse_form(model, dict(zip(names, bits)), max_gap)
    data, breakdown = encode_sqz(model.spec.to_dict(), layers, bits, coder)
    assert breakdown["total"] == len(data) == sum(v for k, v in breakdown.items() if k != "total")
    spec, decoded, metadata = decode_sqz(data)
    assert spec == json.loads(json.dumps(model.spec.to_dict()))
    assert metadata["bits"] == bits and metadata["coders"] == [coder] * len(bits)
    assert metadata["breakdown"] == breakdown
    for name, layer in zip(names, decoded):
        expected = quantizations[name].weight().numpy()
        assert layer.dense_weight().tobytes() == expected.tobytes()


@pytest.mark.parametrize("coder", ["huffman", "ans"])
def test_published_model_at_8_bits_decodes_exactly_and_is_smaller(tmp_path, published_model, published_layers, coder):
    out = tmp_path / "published.sqz"
    result = compress_model(published_model, CompressionRecipe(bits=8, coder=coder), out)
    size = out.stat().st_size
    assert size == result.breakdown["total"] == sqz_breakdown(out)["total"]
    assert size < PUBLISHED_BYTES
    print(f"published model re-encoded at 8 bits with {coder}: {size} bytes")
    _, layers, _ = read_sqz(out)
    for ours, theirs in zip(layers, published_layers):
        assert ours.dense_weight().tobytes() == theirs.dense_weight().tobytes()
        assert ours.bias.tobytes() == theirs.bias.tobytes()
    decoded = read_sqz_model(out)
    assert not decoded.training
    for key, value in published_model.state_dict().items():
        assert torch.equal(decoded.state_dict()[key], value), key


def test_float16_exact_codebooks_and_biases_take_two_bytes():
    model = tiny_model()
    with torch.no_grad():
        for _, module in weight_layers(model):
            module.bias.copy_(module.bias.half().float())
    quantizations, layers = sparse_form(model, 4)
    wide = encode_sqz(model.spec.to_dict(), layers, 4, "ans")[1]
    for layer in layers:
        layer.codebook = layer.codebook.astype(np.float16).astype(np.float32)
    narrow = encode_sqz(model.spec.to_dict(), layers, 4, "ans")[1]
    entries = sum(len(layer.codebook) - 1 for layer in layers)
    assert wide["codebooks"] == 4 * entries and narrow["codebooks"] == 2 * entries
    assert narrow["biases"] == 2 * sum(len(layer.bias) for layer in layers)


def test_class_names_and_preprocessing_travel_with_the_model(tmp_path):
    model = tiny_model()
    _, layers = sparse_form(model, 3)
    names = [f"class {index}" for index in range(10)]
    write_sqz(tmp_path / "named.sqz", model.spec.to_dict(), layers, 3, "ans", classes=names, preprocess="cifar")
    _, _, metadata = read_sqz(tmp_path / "named.sqz")
    assert metadata["classes"] == names and metadata["preprocess"] == "cifar"
    decoded = read_sqz_model(tmp_path / "named.sqz")
    assert decoded.class_names == names and decoded.preprocess == "cifar"


def test_writer_rejects_inconsistent_layers(tmp_path):
    model = tiny_model()
    _, layers = sparse_form(model, 4)
    spec = model.spec.to_dict()
    with pytest.raises(ValueError, match="weight layers"):
        write_sqz(tmp_path / "x.sqz", spec, layers[:-1], 4, "ans")
    with pytest.raises(ValueError, match="codebook"):
        write_sqz(tmp_path / "x.sqz", spec, layers, 1, "ans")
    with pytest.raises(ValueError, match="BatchNorm"):
        write_sqz(tmp_path / "x.sqz", {**spec, "batch_norm": True}, layers, 4, "ans")
    with pytest.raises(ValueError, match="coder"):
        write_sqz(tmp_path / "x.sqz", spec, layers, 4, "zip")
    assert not (tmp_path / "x.sqz").exists()
