"""Shared fixtures: paths into ../shared/data (read in place) and small real slices of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SQUEEZENET_DATA", REPO.parent / "shared" / "data"))
PUBLISHED_NET = DATA / "deep-compression-squeezenet" / "compressed_SqueezeNet.net"
IMAGENET_SAMPLES = DATA / "imagenet-samples"
CIFAR_TRAIN = DATA / "cifar10" / "train"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"test data missing: {path} (tests read ../shared/data in place)")
    return path


@pytest.fixture(scope="session")
def published_net() -> Path:
    return _require(PUBLISHED_NET)


@pytest.fixture(scope="session")
def imagenet_samples() -> Path:
    return _require(IMAGENET_SAMPLES)


@pytest.fixture(scope="session")
def cifar_train() -> Path:
    return _require(CIFAR_TRAIN)


@pytest.fixture(scope="session")
def sample_photos(imagenet_samples: Path) -> list[Path]:
    """A fixed handful of real photos (sorted names, every 50th) for quick end-to-end checks."""
    photos = sorted(imagenet_samples.glob("*.JPEG"))
    return photos[::50][:8]


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, above all on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def published_model(published_net: Path):
    from squeezenet.weights import load_model

    return load_model(published_net)


CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cifar_slice(folder: Path, classes=CIFAR_CLASSES, per_class: int = 10, *, from_end: bool = False) -> Path:
    """An ImageFolder of symlinks to ``per_class`` real CIFAR-10 images of each of ``classes``
    (the first ones of each class, or with ``from_end`` the last ones: the validation split's)."""
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        images = sorted((_require(CIFAR_TRAIN) / name).iterdir())
        for source in images[-per_class:] if from_end else images[:per_class]:
            (folder / name / source.name).symlink_to(source)
    return folder


@pytest.fixture
def cli(capsys):
    """The command line run in this process as a user types it: ``cli("evaluate", "--weights", ...)``
    returns (exit status, the JSON object of the last stdout line, or None when there is none)."""
    import json

    from squeezenet.cli import main

    def run(*args) -> tuple[int, dict | None]:
        status = main([str(arg) for arg in args])
        lines = capsys.readouterr().out.strip().splitlines()
        try:
            return status, json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            return status, None

    return run
