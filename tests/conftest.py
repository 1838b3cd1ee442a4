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
