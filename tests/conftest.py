"""Shared fixtures: paths into ../shared/data (read in place) and small real slices of it."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
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


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Commands run in-process set torch's thread count (--threads, or one thread on a busy machine);
    restore it, so that a test's cost does not depend on the tests that ran before it."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


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


@functools.cache
def sorted_names(folder: Path) -> tuple[str, ...]:
    """The names in a (read-only) data folder, sorted as ``sorted(folder.iterdir())`` sorts them, listed
    once a session: a CIFAR-10 class holds 5,000 images, and making and sorting 5,000 Paths took
    ~0.06 s of CPU per class, for every slice made."""
    return tuple(sorted(os.listdir(_require(folder))))


def cifar_slice(folder: Path, classes=CIFAR_CLASSES, per_class: int = 10, *, from_end: bool = False) -> Path:
    """An ImageFolder of symlinks to ``per_class`` real CIFAR-10 images of each of ``classes``
    (the first ones of each class, or with ``from_end`` the last ones: the validation split's)."""
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        names = sorted_names(CIFAR_TRAIN / name)
        for source in names[-per_class:] if from_end else names[:per_class]:
            (folder / name / source).symlink_to(CIFAR_TRAIN / name / source)
    return folder


def last_json(stdout: str) -> dict | None:
    """The JSON object on the last line of ``stdout`` (the CLI's --json result), or None."""
    import json

    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None


def cli_argv(*args) -> list[str]:
    """The argv of ``python -m squeezenet ARGS`` in a fresh interpreter (for Popen: kills, signals)."""
    return [sys.executable, "-m", "squeezenet", *map(str, args)]


def run_cli_process(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m squeezenet ARGS`` in a fresh interpreter, for tests about the process itself
    (exit status and stderr as a shell sees them, interpreter-wide state): a CompletedProcess with
    text. Everything else runs in this process, through the ``cli`` fixture."""
    return subprocess.run(cli_argv(*args), check=False, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def cli(capsys):
    """The command line run in this process as a user types it: ``cli("evaluate", "--weights", ...)``
    returns (exit status, the JSON object of the last stdout line, or None when there is none).
    argparse's own exits come back as their status; ``cli.out`` and ``cli.err`` hold the last call's
    stdout and stderr."""
    from squeezenet.cli import main

    def run(*args) -> tuple[int, dict | None]:
        try:
            status = main([str(arg) for arg in args])
        except SystemExit as stop:  # argparse's own errors and --help
            status = stop.code
        captured = capsys.readouterr()
        run.out, run.err = captured.out, captured.err
        return status, last_json(captured.out)

    run.out = run.err = ""
    return run


# --- the published model, compressed once per session and shared (read-only) -------------------------


@pytest.fixture(scope="session")
def published_layers(published_net: Path):
    """The published .net file's 26 sparse layers (read_net). Shared: do not modify them."""
    from squeezenet.compress.caffe_net import read_net

    return read_net(published_net)


class _PublishedEncodings(dict):
    """``encodings[coder]``: the published layers encoded at 8 bits with ``coder`` (bit-exact to the
    .net), as .sqz bytes; each coder's file is built on first use."""

    def __init__(self, layers) -> None:
        super().__init__()
        self.layers = layers

    def __missing__(self, coder: str) -> bytes:
        from squeezenet.compress.caffe_net import net_to_model
        from squeezenet.compress.sqz import encode_sqz

        self[coder] = encode_sqz(net_to_model(self.layers).spec.to_dict(), self.layers, 8, coder)[0]
        return self[coder]


@pytest.fixture(scope="session")
def published_encodings(published_layers) -> _PublishedEncodings:
    """The published model as in-memory .sqz bytes per coder: ``published_encodings["ans"]``."""
    return _PublishedEncodings(published_layers)


@pytest.fixture(scope="session")
def published_sqz8(tmp_path_factory, published_net: Path) -> Path:
    """What ``squeezenet compress --weights compressed_SqueezeNet.net --bits 8 --out X.sqz`` writes,
    run once in this process. Shared: read it, copy it, never write it."""
    from squeezenet.cli import main

    out = tmp_path_factory.mktemp("published-sqz8") / "published8.sqz"
    assert main(["compress", "--weights", str(published_net), "--bits", "8", "--out", str(out), "--json"]) == 0
    out.chmod(0o444)
    return out
