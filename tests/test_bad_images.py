"""Hostile and unusual images: each is converted, or skipped and counted, as --on-bad-image chooses,
on every command that reads images in bulk: evaluate, train, compress --finetune-data,
compress --calibration-data, export --calibration-data."""

import shutil
import struct
import zlib

import numpy as np
import pytest
import torch
from conftest import cifar_slice
from PIL import Image

from squeezenet.compress.calibration import _warped
from squeezenet.data import load_rgb
from squeezenet.models import squeezenet_cifar
from squeezenet.weights import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels: a decompression bomb's signature."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture()
def bad_folder(tmp_path, imagenet_samples):
    """Three good photos and one of each bad kind, all in a flat <wnid>_<name> folder."""
    folder = tmp_path / "photos"
    folder.mkdir()
    good = sorted(imagenet_samples.glob("*.JPEG"))[:3]
    for photo in good:
        shutil.copy(photo, folder / photo.name)
    real = good[0].read_bytes()
    (folder / "n01443537_truncated.JPEG").write_bytes(real[: len(real) // 3])
    (folder / "n01484850_empty.JPEG").write_bytes(b"")
    (folder / "n01491361_text.JPEG").write_text("not an image at all")
    (folder / "n01494475_bomb.JPEG").write_bytes(png_claiming(40_000, 40_000))
    return folder


def test_each_bad_kind_is_a_value_error(bad_folder):
    for name in ("truncated", "empty", "text", "bomb"):
        path = next(bad_folder.glob(f"*_{name}.JPEG"))
        with pytest.raises(ValueError, match="not a readable image"):
            load_rgb(path)


def test_unusual_but_valid_images_are_converted(tmp_path):
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(cmyk)  # pure red in CMYK
    rgb = np.asarray(load_rgb(cmyk))
    assert rgb.shape == (30, 40, 3) and rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 60
    tiny = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tiny)
    assert load_rgb(tiny).size == (1, 1)
    gray = tmp_path / "gray.jpg"
    Image.new("L", (8, 8), 128).save(gray)
    assert load_rgb(gray).mode == "RGB"
    palette_alpha = tmp_path / "pal.png"
    Image.new("RGBA", (5, 5), (0, 0, 255, 0)).convert("P").save(palette_alpha, transparency=0)
    assert load_rgb(palette_alpha).mode == "RGB"


def test_evaluate_skips_and_counts_or_fails_on_request(bad_folder, published_net, cli):
    common = ("evaluate", "--weights", published_net, "--data", bad_folder, "--json")
    status, metrics = cli(*common)
    assert status == 0, cli.err
    assert metrics["images"] == 3 and metrics["skipped"] == 4
    assert cli(*common, "--on-bad-image", "fail")[0] == 2
    assert "not a readable image" in cli.err and len(cli.err.strip().splitlines()) == 1


# --- --on-bad-image on train, compress and export ---------------------------------------------------

BAD_KINDS = {
    "empty": b"",
    "text": b"this is not an image",
    "truncated": None,  # the first third of a real JPEG
}


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
    folder = cifar_slice(tmp_path / "data", ("airplane", "frog", "truck"), 6)
    real = next((cifar_train / "frog").glob("*.jpg")).read_bytes()
    write_bad(folder / "frog", real)
    return folder


def test_train_on_bad_image_fail_stops_with_one_line(cifar_with_bad, tmp_path, cli):
    code, _ = cli("train", "--arch", "squeezenet_cifar", "--data", str(cifar_with_bad), "--epochs", "1",
                       "--batch-size", "6", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
                       "--threads", "1", "--on-bad-image", "fail", "--json")
    assert code == 2 and "not a readable image (--on-bad-image fail)" in cli.err
    assert len(cli.err.strip().splitlines()) == 1 and "zz_" in cli.err
    assert not (tmp_path / "run" / "last.pth").exists()


@pytest.fixture()
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    save_checkpoint(path, squeezenet_cifar(base_e=8, incr_e=8, squeeze_ratio=0.25, num_classes=3),
                    classes=["airplane", "frog", "truck"], preprocess="cifar")
    return path


def test_compress_finetune_data_skips_and_counts_or_fails(cifar_with_bad, tiny_checkpoint, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "tiny.sqz"
    common = ["compress", "--weights", str(tiny_checkpoint), "--out", str(out), "--bits", "4", "--finetune-data",
              str(cifar_with_bad), "--epochs", "1", "--batch-size", "6", "--json"]
    code, result = cli(*common)
    assert code == 0, cli.err
    assert [record["skipped_images"] for record in result["retraining"]] == [3]
    assert out.exists()
    out.unlink()
    code, _ = cli(*common, "--on-bad-image", "fail")
    assert code == 2 and "not a readable image (--on-bad-image fail)" in cli.err and len(cli.err.strip().splitlines()) == 1
    assert not out.exists()


def test_compress_calibration_photos_skip_and_count_or_fail(imagenet_samples, tmp_path, published_net, cli):
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
    code, _ = cli("compress", "--weights", published_net, "--out", out, "--preset", "imagenet-small",
                  "--calibration-data", folder, "--on-bad-image", "fail")
    assert code == 2 and "not a readable image" in cli.err and len(cli.err.strip().splitlines()) == 1
    assert not out.exists()


def test_export_calibration_data_skips_and_counts_or_fails(tmp_path, imagenet_samples, published_net, cli):
    """--on-bad-image for the photos that calibrate int8 and check the exports."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(imagenet_samples.glob("*.JPEG"))[:3]:
        (folder / photo.name).symlink_to(photo)
    (folder / "n01443537_broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "c"
    common = ["export", "--format", "c", "--weights", str(published_net), "--out", str(out),
              "--calibration-data", str(folder), "--check-images", "4", "--json"]
    code, result = cli(*common)
    assert code == 0, cli.err
    assert result["c_photos_skipped"] == 1 and result["c_checked_on"] == "3 photos"
    code, _ = cli(*common[:-1], "--out", tmp_path / "c2", "--on-bad-image", "fail", "--json")
    assert code == 2 and "not a readable image" in cli.err
