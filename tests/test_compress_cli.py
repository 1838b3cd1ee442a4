"""squeezenet compress / decompress end to end, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import cifar_slice

from squeezenet.cli import main
from squeezenet.models import squeezenet_cifar, weight_layers
from squeezenet.weights import load_model, save_checkpoint

PUBLISHED_BYTES = 675_763


pytestmark = pytest.mark.usefixtures("one_thread")


def run_json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def run_failing(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.fixture
def published_sqz(published_sqz8):
    """`squeezenet compress --weights compressed_SqueezeNet.net --bits 8` (conftest: built once a session)."""
    return published_sqz8


def test_compress_published_model_reports_sizes_and_decodes_exactly(published_sqz, published_model, capsys, tmp_path):
    capsys.readouterr()
    result = run_json(capsys, "info", "--weights", str(published_sqz))
    assert result["file_bytes"] == result["breakdown"]["total"] == published_sqz.stat().st_size < PUBLISHED_BYTES
    pth, safetensors = tmp_path / "m.pth", tmp_path / "m.safetensors"
    for out in (pth, safetensors):
        decompressed = run_json(capsys, "decompress", "--weights", str(published_sqz), "--out", str(out))
        assert decompressed["bytes"] == out.stat().st_size and decompressed["params"] == 1_248_424
        model = load_model(out)
        for key, value in published_model.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key


def test_compress_json_fields_with_pruning_and_per_layer_bits(published_net, capsys, tmp_path):
    out = tmp_path / "small.sqz"
    result = run_json(capsys, "compress", "--weights", str(published_net), "--out", str(out),
                      "--prune", "default=0.7,conv1=0.3", "--bits", "conv1=8,fire9=7,default=5", "--coder", "huffman")
    assert result["bytes"] == out.stat().st_size == result["breakdown"]["total"]
    assert result["ratio_vs_fp32"] == pytest.approx(4 * 1_248_424 / result["bytes"], rel=1e-3)
    assert result["bits"]["conv1"] == 8 and result["bits"]["fire9/expand3x3"] == 7 and result["bits"]["conv10"] == 5
    model = load_model(out)
    layers = dict(weight_layers(model))
    assert len(torch.unique(layers["classifier.1"].weight)) <= 2**5
    weights = sum(m.weight.numel() for m in layers.values())
    nonzero = sum(int(torch.count_nonzero(m.weight)) for m in layers.values())
    assert result["nonzero_fraction"] == pytest.approx(nonzero / weights, abs=1e-6)
    assert float((layers["features.0"].weight == 0).float().mean()) == pytest.approx(0.3, abs=0.01)


def test_damaged_sqz_files_give_one_line_and_exit_2(published_sqz, capsys, tmp_path):
    data = published_sqz.read_bytes()
    truncated = tmp_path / "truncated.sqz"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.sqz"
    damaged = bytearray(data)
    damaged[len(data) // 3] ^= 0x10
    flipped.write_bytes(bytes(damaged))
    for path in (truncated, flipped):
        for command in ("info", "decompress"):
            extra = ["--out", str(tmp_path / "x.pth")] if command == "decompress" else []
            line = run_failing(capsys, command, "--weights", str(path), *extra)
            assert "CRC32" in line and str(path) in line
    assert not (tmp_path / "x.pth").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--bits", "conv1=x"], "bad value"),
        (["--bits", "conv99=8,default=6"], "no weight layer named conv99"),
        (["--bits", "13"], "bit width 13"),
        (["--prune", "1.5"], "sparsity"),
        (["--preset", "no-such-preset"], "unknown preset"),
    ],
)
def test_bad_settings_give_one_line_and_exit_2(published_net, capsys, tmp_path, options, message):
    line = run_failing(capsys, "compress", "--weights", str(published_net), "--out", str(tmp_path / "x.sqz"), *options)
    assert message in line
    assert not (tmp_path / "x.sqz").exists()


def test_finetune_wiring_on_a_cifar_slice(cifar_train, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    folder = cifar_slice(tmp_path / "slice", per_class=8)  # the first 8 images of each of the 10 classes
    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny.pth"
    classes = sorted(p.name for p in folder.iterdir())
    save_checkpoint(checkpoint, squeezenet_cifar(base_e=8, incr_e=8, squeeze_ratio=0.25, batch_norm=True),
                    classes=classes, preprocess="cifar")
    out = tmp_path / "tiny.sqz"
    result = run_json(capsys, "compress", "--weights", str(checkpoint), "--out", str(out), "--prune", "0.5",
                      "--prune-rounds", "2", "--bits", "4", "--finetune-data", str(folder), "--val-split", "2",
                      "--epochs", "1", "--batch-size", "20", "--lr", "0.05")
    assert len(result["retraining"]) == 3  # two prune-retrain rounds, then the centroids
    assert all(np.isfinite(record["loss"]) for record in result["retraining"])
    model = load_model(out)
    assert model.class_names == classes and model.preprocess == "cifar"  # kept through BN folding
    for _, module in weight_layers(model):
        assert float((module.weight == 0).float().mean()) >= 0.5 - 1 / module.weight.numel()
        assert len(torch.unique(module.weight)) <= 2**4


def test_preset_hook_runs_a_registered_preset_on_unlabelled_photos(published_net, imagenet_samples, capsys, tmp_path,
                                                                   monkeypatch):
    """The --preset wiring with a tiny stand-in preset (the real one takes minutes: see BENCHMARKS.md)."""
    from squeezenet.compress import presets
    from squeezenet.compress.allocation import BitAllocation
    from squeezenet.compress.distill import DistillConfig
    from squeezenet.compress.pipeline import CompressionRecipe

    tiny = presets.NamedRecipe(name="tiny-test", description="test only", recipe=CompressionRecipe(
        allocation=BitAllocation(candidate_bits=(6,), distortion_budget=1.0, sensitivity_every=100),
        distillation=DistillConfig(epochs=1, batch_size=2), float16=True))
    monkeypatch.setitem(presets.COMPRESSION_RECIPES, "tiny-test", tiny)
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted(imagenet_samples.glob("*.JPEG"))[:4]:
        (photos / photo.name).symlink_to(photo)
    out = tmp_path / "preset.sqz"
    result = run_json(capsys, "compress", "--weights", str(published_net), "--out", str(out), "--preset", "tiny-test",
                      "--calibration-data", str(photos))
    assert result["preset"] == "tiny-test" and result["calibration_images"] == 2  # the even half only
    assert set(result["bits"].values()) == {6}
    assert result["bytes"] == out.stat().st_size
    model = load_model(out)
    assert all(len(torch.unique(module.weight)) <= 2**6 for _, module in weight_layers(model))
    line = run_failing(capsys, "compress", "--weights", str(published_net), "--out", str(out), "--preset", "tiny-test",
                       "--bits", "8", "--calibration-data", str(photos))
    assert "--preset sets" in line
