"""What docs/DEPLOY.md promises a device without torch: NumPy preprocessing equal to torchvision's,
and the exported C example classifying a photo file as PyTorch does. Real photos, real models."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import sorted_names

from squeezenet.data import load_rgb, preprocess
from squeezenet.export.c99.check import STRICT_FLAGS
from squeezenet.export.c99.export import export_c
from squeezenet.preprocess_numpy import load_photo, load_photos
from squeezenet.runtime_numpy import load_numpy_model
from squeezenet.weights import load_model

REPO = Path(__file__).resolve().parents[1]
CIFAR_MODEL = REPO / "results" / "cifar10" / "squeezenet_cifar_dc8bit_ans.sqz"
IMAGENET_MODEL = REPO / "results" / "imagenet-small.sqz"

# Largest difference from torchvision measured on these photos (2026-12-01): 1.5e-5 for caffe
# (0..255 scale), 7.2e-7 for torchvision and 4.8e-7 for cifar (normalised scale): float32 rounding
# only, since torchvision resizes and crops a PIL image with the same Pillow calls.
TOLERANCE = {"caffe": 1e-4, "torchvision": 1e-5, "cifar": 1e-5}


def _cifar_photos(cifar_train: Path, per_class: int = 1, start: int = 0) -> list[Path]:
    classes = sorted(folder for folder in cifar_train.iterdir() if folder.is_dir())
    return [folder / sorted_names(folder)[start + k] for folder in classes for k in range(per_class)]


def _imagenet_photos(imagenet_samples: Path, count: int) -> list[Path]:
    photos = sorted(imagenet_samples.glob("*.JPEG"))
    return photos[:: len(photos) // count][:count]


def _compiler() -> str:
    compiler = shutil.which("gcc")
    assert compiler is not None, "gcc is needed to check the C example (DEPLOY.md 3b); install it"
    return compiler


def test_numpy_preprocessing_never_imports_torch(tmp_path, cifar_train):
    photo = _cifar_photos(cifar_train)[0]
    script = ("import sys; sys.modules['torch'] = None\n"
              "from squeezenet.preprocess_numpy import load_photos\n"
              "from squeezenet.runtime_numpy import load_numpy_model\n"
              f"print(load_numpy_model({str(CIFAR_MODEL)!r})(load_photos([{str(photo)!r}], 'cifar')).shape)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 10)"


@pytest.mark.parametrize("preset", ["caffe", "torchvision", "cifar"])
def test_numpy_presets_equal_torchvision_on_real_photos(preset, imagenet_samples, cifar_train):
    photos = _cifar_photos(cifar_train)[:8] if preset == "cifar" else _imagenet_photos(imagenet_samples, 8)
    for path in photos:
        expected = preprocess(preset)(load_rgb(path)).numpy()
        actual = load_photo(path, preset)
        assert actual.dtype == np.float32 and actual.shape == expected.shape
        assert np.abs(actual - expected).max() <= TOLERANCE[preset], path.name


def test_numpy_presets_take_another_input_size(imagenet_samples):
    path = _imagenet_photos(imagenet_samples, 1)[0]
    for preset in ("caffe", "torchvision"):
        expected = preprocess(preset, input_size=113)(load_rgb(path)).numpy()
        assert np.abs(load_photo(path, preset, 113) - expected).max() <= TOLERANCE[preset]


def test_numpy_runtime_on_numpy_preprocessing_agrees_with_pytorch(cifar_train):
    photos = _cifar_photos(cifar_train, start=1)
    numpy_logits = load_numpy_model(CIFAR_MODEL)(load_photos(photos, "cifar"))
    model = load_model(CIFAR_MODEL)
    with torch.no_grad():
        torch_logits = model(torch.stack([preprocess("cifar")(load_rgb(path)) for path in photos])).numpy()
    assert (numpy_logits.argmax(1) == torch_logits.argmax(1)).all()
    assert np.abs(numpy_logits - torch_logits).max() < 1e-3


def test_unknown_preset_and_unreadable_photo_are_value_errors(tmp_path, cifar_train):
    with pytest.raises(ValueError, match="unknown preprocessing preset"):
        load_photo(_cifar_photos(cifar_train)[0], "imagenet")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    with pytest.raises(ValueError, match="broken.jpg: not a readable image"):
        load_photos([broken], "cifar")


def _classify_with_c(model: Path, photos: list[Path], folder: Path) -> list[list[tuple[int, float]]]:
    """Export ``model`` to C, build the shipped example with the strict flags, run it on PPM copies."""
    result = export_c(model, folder / "c", command="tests/test_deploy_docs.py")
    assert {Path(name).name for name in result["files"]} >= {"classify_ppm.c", "classify_ppm_config.h"}
    binary = folder / "classify"
    build = subprocess.run([_compiler(), *STRICT_FLAGS, str(folder / "c" / "model.c"), str(folder / "c" / "classify_ppm.c"),
                            "-lm", "-o", str(binary)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    rankings = []
    for index, path in enumerate(photos):
        ppm = folder / f"photo{index}.ppm"
        load_rgb(path).save(ppm)
        run = subprocess.run([str(binary), str(ppm)], capture_output=True, text=True, check=True)
        rankings.append([(int(index), float(score)) for index, score in (line.split() for line in run.stdout.splitlines())])
    return rankings


def _pytorch_logits(model_path: Path, photos: list[Path]) -> np.ndarray:
    model = load_model(model_path)
    transform = preprocess("caffe" if model.spec.input_size > 64 else "cifar")
    with torch.no_grad():
        return model(torch.stack([transform(load_rgb(path)) for path in photos])).numpy()


def test_c_example_classifies_cifar_photos_as_pytorch_does(tmp_path, cifar_train):
    photos = _cifar_photos(cifar_train, start=2)[:4]
    rankings = _classify_with_c(CIFAR_MODEL, photos, tmp_path)
    reference = _pytorch_logits(CIFAR_MODEL, photos)
    for ranking, logits in zip(rankings, reference):
        assert [index for index, _ in ranking] == list(np.argsort(-logits)[:5])
        assert max(abs(score - logits[index]) for index, score in ranking) < 1e-3


def test_c_example_resizes_large_photos_like_pillow(tmp_path, imagenet_samples):
    """ImageNet photos of any size through the caffe preset: the C resize must give PyTorch's top-1."""
    photos = _imagenet_photos(imagenet_samples, 3)
    rankings = _classify_with_c(IMAGENET_MODEL, photos, tmp_path)
    reference = _pytorch_logits(IMAGENET_MODEL, photos)
    for ranking, logits in zip(rankings, reference):
        assert ranking[0][0] == int(logits.argmax())
        # Pillow resizes in fixed point, the example in float: pixels differ by at most one level, which
        # moved the best logit by up to 0.15 on 8 photos (2026-12-01).
        assert abs(ranking[0][1] - float(logits.max())) < 0.5
