"""`squeezenet relabel`: a new header (class names, preprocessing) on a .sqz file, every layer kept."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import sorted_names

from squeezenet.commands import relabel
from squeezenet.compress.bytestream import ByteReader
from squeezenet.compress.sqz import read_sqz, read_sqz_model, write_sqz

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results" / "cifar10" / "squeezenet_cifar_dc6bit_huffman.sqz"


def _relabel(*argv: str) -> dict:
    """The command as the CLI runs it: its own parser, then ``run``."""
    parser = argparse.ArgumentParser()
    relabel.add_parser(parser.add_subparsers())
    return relabel.run(parser.parse_args(["relabel", *argv]))


def _layer_bytes(path: Path) -> bytes:
    """Everything between the JSON header and the CRC: the layers' bit widths, coders, codebooks,
    biases, codes and relative indices."""
    data = path.read_bytes()
    reader = ByteReader(data, 4, len(data) - 4)
    size = reader.varint("header size", 1 << 20)
    return data[reader.offset + size:-4]


@pytest.fixture()
def class_folder(cifar_train, tmp_path):
    """A CIFAR-10 ImageFolder of symlinks (one photo per class): its class names, sorted."""
    root = tmp_path / "classes"
    for class_dir in sorted(p for p in cifar_train.iterdir() if p.is_dir()):
        (root / class_dir.name).mkdir(parents=True)
        photo = class_dir / sorted_names(class_dir)[0]
        os.symlink(photo, root / class_dir.name / photo.name)
    return root


def _mixed_file(tmp_path: Path) -> Path:
    """The committed model re-written with a different bit width and coder on every layer, so the
    round trip has to keep each layer's own."""
    spec, layers, metadata = read_sqz(COMMITTED)
    coders = [("ans", "huffman", "fixed")[index % 3] for index in range(len(layers))]
    bits = [max(width, 6 + index % 3) for index, width in enumerate(metadata["bits"])]
    path = tmp_path / "mixed.sqz"
    write_sqz(path, spec, layers, bits, coders)
    return path


def test_relabel_keeps_every_layer(class_folder, tmp_path):
    source = _mixed_file(tmp_path)
    before_spec, before_layers, before = read_sqz(source)
    assert "classes" not in before and "preprocess" not in before
    out = tmp_path / "labelled.sqz"
    result = _relabel("--weights", str(source), "--out", str(out), "--classes-from", str(class_folder),
                      "--preprocess", "cifar")
    names = sorted(path.name for path in class_folder.iterdir())
    assert result["classes"] == names and result["preprocess"] == "cifar" and result["bytes"] == out.stat().st_size
    spec, layers, after = read_sqz(out)
    assert spec == before_spec and after["classes"] == names and after["preprocess"] == "cifar"
    assert after["bits"] == before["bits"] and after["coders"] == before["coders"]
    assert len(set(after["coders"])) == 3
    for old, new in zip(before_layers, layers):
        assert np.array_equal(old.dense_weight(), new.dense_weight()) and np.array_equal(old.bias, new.bias)
    assert _layer_bytes(out) == _layer_bytes(source)
    # Relabelling again with explicit names changes only the header once more; the preprocessing,
    # not given, stays the file's.
    again = tmp_path / "renamed.sqz"
    renamed = [f"class-{index}" for index in range(10)]
    _relabel("--weights", str(out), "--out", str(again), "--classes", ",".join(renamed))
    model = read_sqz_model(again)
    assert model.class_names == renamed and model.preprocess == "cifar"
    assert _layer_bytes(again) == _layer_bytes(source)


def test_committed_cifar_models_carry_class_names():
    # The committed CIFAR-10 models carry the folder's class names and the CIFAR preprocessing.
    model = read_sqz_model(COMMITTED)
    assert model.class_names[:3] == ["airplane", "automobile", "bird"] and model.preprocess == "cifar"


def test_relabel_refusals(class_folder, tmp_path):
    copy = tmp_path / "model.sqz"
    copy.write_bytes(COMMITTED.read_bytes())
    with pytest.raises(ValueError, match="is the input file"):
        _relabel("--weights", str(copy), "--out", str(copy), "--classes-from", str(class_folder))
    with pytest.raises(ValueError, match="3 class names given but the model scores 10 classes"):
        _relabel("--weights", str(copy), "--out", str(tmp_path / "out.sqz"), "--classes", "a,b,c")
    not_sqz = tmp_path / "model.pth"
    not_sqz.write_bytes(b"PK\x03\x04 a zip, not a .sqz file")
    with pytest.raises(ValueError, match="not a .sqz file"):
        _relabel("--weights", str(not_sqz), "--out", str(tmp_path / "out.sqz"), "--classes-from", str(class_folder))
    with pytest.raises(FileNotFoundError):
        _relabel("--weights", str(tmp_path / "missing.sqz"), "--out", str(tmp_path / "out.sqz"), "--classes", "a")
    assert not (tmp_path / "out.sqz").exists()
    assert copy.read_bytes() == COMMITTED.read_bytes()
