"""Hostile and unusual images: each is converted, or skipped and counted, as --on-bad-image chooses."""

import json
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from squeezenet.data import load_rgb


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


def evaluate_cli(folder, net, *extra):
    return subprocess.run(
        [sys.executable, "-m", "squeezenet", "evaluate", "--weights", str(net), "--data", str(folder), "--json", *extra],
        capture_output=True, text=True, timeout=300,
    )


def test_evaluate_skips_and_counts(bad_folder, published_net):
    result = evaluate_cli(bad_folder, published_net)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["images"] == 3 and metrics["skipped"] == 4


def test_evaluate_fails_on_request(bad_folder, published_net):
    result = evaluate_cli(bad_folder, published_net, "--on-bad-image", "fail")
    assert result.returncode == 2
    assert "not a readable image" in result.stderr and "Traceback" not in result.stderr
