"""ONNX export: onnxruntime matches PyTorch on real photos; int8 agrees with fp32; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cifar_slice
from squeezenet.export.onnx import export_onnx, onnx_session, quantize_onnx_int8, run_onnx
from squeezenet.export.photos import photo_batch, photo_paths
from squeezenet.models import squeezenet_cifar
from squeezenet.weights import save_checkpoint

TOLERANCE = 1e-4  # max abs logit difference, the bound


@pytest.fixture(scope="module")
def photos(imagenet_samples):
    return photo_batch(imagenet_samples, "caffe", 227, 6)


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory, published_model):
    path = tmp_path_factory.mktemp("onnx") / "squeezenet.onnx"
    export_onnx(published_model, path)
    return path


def test_onnx_matches_pytorch_on_photos_at_two_batch_sizes(fp32_onnx, published_model, photos):
    images, labels = photos
    with torch.no_grad():
        reference = published_model(torch.from_numpy(images)).numpy()
    session = onnx_session(fp32_onnx, threads=1)
    batched = run_onnx(session, images)
    single = run_onnx(session, images[:1])
    assert batched.shape == (len(images), 1000)
    assert np.abs(batched - reference).max() < TOLERANCE
    assert np.abs(single - reference[:1]).max() < TOLERANCE
    # The published model gets most of these photos right (57.5% top-1 on ImageNet val).
    assert (reference.argmax(1) == labels).sum() >= len(labels) // 2


def test_int8_agrees_with_fp32_on_unseen_photos(fp32_onnx, imagenet_samples, tmp_path):
    calibration, _ = photo_batch(imagenet_samples, "caffe", 227, 4)
    seen = [path for path, _ in photo_paths(imagenet_samples, 4)]
    check, labels = photo_batch(imagenet_samples, "caffe", 227, 8, exclude=seen)
    int8_path = tmp_path / "int8.onnx"
    quantize_onnx_int8(fp32_onnx, int8_path, calibration)
    assert int8_path.stat().st_size < fp32_onnx.stat().st_size / 2
    assert not list(tmp_path.glob("*.prepared.onnx"))
    fp32 = run_onnx(onnx_session(fp32_onnx), check)
    int8 = run_onnx(onnx_session(int8_path), check)
    assert (int8.argmax(1) == fp32.argmax(1)).mean() >= 0.75
    assert not np.array_equal(int8, fp32)  # it really is a different (quantized) model


def test_cifar_batch_norm_model_exports_folded(tmp_path, cifar_train, cli):
    torch.manual_seed(0)
    model = squeezenet_cifar(batch_norm=True, bypass="complex")
    for module in model.modules():  # non-trivial statistics so folding matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    checkpoint = tmp_path / "cifar.pth"
    save_checkpoint(checkpoint, model)
    images, _ = photo_batch(cifar_train, "cifar", 32, 4)
    status, report = cli("export", "--format", "onnx", "--weights", checkpoint, "--out", tmp_path / "cifar.onnx", "--json")
    assert status == 0, cli.err
    assert report["max_abs_logit_diff_vs_pytorch"] < TOLERANCE
    with torch.no_grad():
        reference = model.eval()(torch.from_numpy(images)).numpy()
    exported = run_onnx(onnx_session(tmp_path / "cifar.onnx"), images)
    assert np.abs(exported - reference).max() < TOLERANCE


def test_bad_input_exits_2_and_writes_nothing(tmp_path, published_net, cli):
    not_a_model = tmp_path / "notes.pth"
    not_a_model.write_bytes(b"this is not a model")
    out = tmp_path / "model.onnx"
    cases = [
        ["--weights", str(not_a_model), "--out", str(out)],
        ["--weights", str(published_net), "--out", str(tmp_path)],  # a folder, not a file
        ["--weights", str(published_net), "--out", str(out), "--format", "onnx-int8"],  # no calibration photos
    ]
    for arguments in cases:
        if "--format" not in arguments:
            arguments = [*arguments, "--format", "onnx"]
        assert cli("export", *arguments)[0] == 2
        error = cli.err
        assert len(error.strip().splitlines()) == 1 and error.startswith("squeezenet export: error:")
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.pth"]


def test_onnx_int8_command_writes_the_int8_engines_own_quantization(tmp_path, cli, one_thread):
    """--format onnx-int8 is the int8 engine's model (its scales, calibrated on the same photos) as
    QDQ ONNX: onnxruntime's answers follow Int8Model's on photos it was not calibrated on."""
    from squeezenet.export.compressed import compressed_model
    from squeezenet.int8.reference import Int8Model

    weights = Path(__file__).resolve().parents[1] / "results" / "cifar10" / "squeezenet_cifar_dc6bit_huffman.sqz"
    photos = cifar_slice(tmp_path / "photos", per_class=8)  # 80 real photos: 16 calibrate, 48 others check
    out = tmp_path / "cifar.int8.onnx"
    status, report = cli("export", "--format", "onnx-int8", "--weights", weights, "--calibration-data", photos,
                         "--calibration-images", "16", "--check-images", "48", "--out", out, "--json")
    assert status == 0, cli.err
    assert report["calibration_images"] == 16 and report["compared_images"] == 48
    assert report["top1_agreement_with_int8_reference"] >= 0.9
    compressed = compressed_model(weights)
    calibration, _ = photo_batch(photos, "cifar", 32, 16)
    reference = Int8Model.calibrated(compressed.spec, compressed.layers, calibration)
    seen = [path for path, _ in photo_paths(photos, 16)]
    check, _ = photo_batch(photos, "cifar", 32, 48, exclude=seen)
    exported, expected = run_onnx(onnx_session(out), check), reference(check)
    # onnxruntime requantizes in float, the engine in fixed point: a few steps of the class scores apart.
    step = float(reference.quantization.activations[reference.network.operations[-2].name].scale)
    assert np.median(np.abs(exported - expected)) <= 2 * step
    assert (exported.argmax(1) == expected.argmax(1)).mean() >= 0.9
    status, scored = cli("evaluate", "--weights", out, "--data", photos, "--json")  # metadata: classes, preset
    assert status == 0, cli.err
    assert scored["preprocess"] == "cifar" and scored["top1"] > 0.5
