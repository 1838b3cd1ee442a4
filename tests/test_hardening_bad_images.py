"""--on-bad-image skip|fail on every command that reads images in bulk besides evaluate
(tests/test_bad_images.py): train, compress --finetune-data, compress --calibration-data."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from squeezenet.cli import main
from squeezenet.commands.compress import _warped
from squeezenet.models import squeezenet_cifar
from squeezenet.weights import save_checkpoint

BAD_KINDS = {
    "empty": b"",
    "text": b"this is not an image",
    "truncated": None,  # the first third of a real JPEG
}


pytestmark = pytest.mark.usefixtures("one_thread")


def write_bad(folder, real: bytes) -> list[str]:
    names = []
    for kind, data in BAD_KINDS.items():
        path = folder / f"zz_{kind}.jpg"
        path.write_bytes(real[: len(real) // 3] if data is None else data)
        names.append(path.name)
    return names


@pytest.fixture()
def cifar_with_bad(cifar_train, tmp_path):
    """Three CIFAR-10 classes, 6 real images each, and 3 unreadable files in the frog folder."""
    folder = tmp_path / "data"
    for name in ("airplane", "frog", "truck"):
        (folder / name).mkdir(parents=True)
        for source in sorted((cifar_train / name).glob("*.jpg"))[:6]:
            (folder / name / source.name).symlink_to(source)
    real = next((cifar_train / "frog").glob("*.jpg")).read_bytes()
    write_bad(folder / "frog", real)
    return folder


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_on_bad_image_fail_stops_with_one_line(cifar_with_bad, tmp_path, capsys):
    code, _, err = run(capsys, "train", "--arch", "squeezenet_cifar", "--data", str(cifar_with_bad), "--epochs", "1",
                       "--batch-size", "6", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
                       "--threads", "1", "--on-bad-image", "fail", "--json")
    assert code == 2 and "not a readable image (--on-bad-image fail)" in err
    assert len(err.strip().splitlines()) == 1 and "zz_" in err
    assert not (tmp_path / "run" / "last.pth").exists()


@pytest.fixture()
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    save_checkpoint(path, squeezenet_cifar(base_e=8, incr_e=8, squeeze_ratio=0.25, num_classes=3),
                    classes=["airplane", "frog", "truck"], preprocess="cifar")
    return path


def test_compress_finetune_data_skips_and_counts_or_fails(cifar_with_bad, tiny_checkpoint, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "tiny.sqz"
    common = ["compress", "--weights", str(tiny_checkpoint), "--out", str(out), "--bits", "4", "--finetune-data",
              str(cifar_with_bad), "--epochs", "1", "--batch-size", "6", "--json"]
    code, stdout, err = run(capsys, *common)
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    assert [record["skipped_images"] for record in result["retraining"]] == [3]
    assert out.exists()
    out.unlink()
    code, _, err = run(capsys, *common, "--on-bad-image", "fail")
    assert code == 2 and "not a readable image (--on-bad-image fail)" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_compress_calibration_photos_skip_and_count_or_fail(imagenet_samples, tmp_path, published_net, capsys):
    photos = sorted(imagenet_samples.glob("*.JPEG"))[:3]
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    bad = [folder / name for name in write_bad(folder, photos[0].read_bytes())]
    images, skipped = _warped([*photos, *bad], 64, "skip")
    assert skipped == 3 and tuple(images.shape) == (3, 3, 64, 64) and images.dtype == torch.uint8
    with pytest.raises(ValueError, match="not a readable image"):
        _warped([*photos, *bad], 64, "fail")
    with pytest.raises(ValueError, match="only 1 of 4 calibration photos are readable"):
        _warped([photos[0], *bad], 64, "skip")
    # Through the CLI: the preset's calibration half (every other sorted photo) holds bad files.
    out = tmp_path / "x.sqz"
    code, _, err = run(capsys, "compress", "--weights", str(published_net), "--out", str(out), "--preset",
                       "imagenet-small", "--calibration-data", str(folder), "--on-bad-image", "fail")
    assert code == 2 and "not a readable image" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_export_calibration_data_skips_and_counts_or_fails(tmp_path, imagenet_samples, published_net, capsys):
    """--on-bad-image for the photos that calibrate int8 and check the exports."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(imagenet_samples.glob("*.JPEG"))[:3]:
        (folder / photo.name).symlink_to(photo)
    (folder / "n01443537_broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "c"
    common = ["export", "--format", "c", "--weights", str(published_net), "--out", str(out),
              "--calibration-data", str(folder), "--check-images", "4", "--json"]
    code, stdout, err = run(capsys, *common)
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["c_photos_skipped"] == 1 and result["c_checked_on"] == "3 photos"
    code, _, err = run(capsys, *common[:-1], "--out", str(tmp_path / "c2"), "--on-bad-image", "fail", "--json")
    assert code == 2 and "not a readable image" in err
