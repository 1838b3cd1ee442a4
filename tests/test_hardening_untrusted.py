"""Untrusted weights: a pickle that would run code is refused unrun; downloads are hash-checked first."""

from __future__ import annotations

import hashlib
import io
import pickle

import pytest
import torch
from conftest import run_cli_process

from squeezenet.weights import download, load_model


class RunsCode:
    """Unpickling this calls exec(...), which writes the marker file: proof that code ran."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


@pytest.fixture(params=["torch-zip", "plain-pickle", "checkpoint-dict"])
def malicious(request, tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pth"
    if request.param == "torch-zip":
        torch.save(RunsCode(marker), path)
    elif request.param == "plain-pickle":
        path.write_bytes(pickle.dumps(RunsCode(marker)))
    else:  # hidden inside an otherwise well-formed checkpoint dict
        torch.save({"model": {"features.0.weight": torch.zeros(1)}, "spec": {"family": "squeezenet"},
                    "extra": RunsCode(marker)}, path)
    return path, marker


def test_malicious_pickle_is_refused_and_never_runs(malicious):
    path, marker = malicious
    with pytest.raises(ValueError) as raised:
        load_model(path)
    message = str(raised.value)
    # A torch zip is refused for holding pickled objects; a plain pickle is not a weights file at all.
    assert ("refused" in message or "not a PyTorch weights file" in message) and "\n" not in message
    assert not marker.exists(), "unpickling ran the file's code"


def test_malicious_pickle_through_the_cli_is_one_line_exit_2(tmp_path):
    """A plain pickle also made torch print a protocol warning: the CLI showed it above the error."""
    marker, path = tmp_path / "marker.txt", tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(RunsCode(marker)))
    result = run_cli_process("info", "--weights", path, timeout=120)  # the warning came from another library
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and not marker.exists()


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_with_a_wrong_sha256_is_refused_and_leaves_no_file(tmp_path, monkeypatch, published_net):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    payload = published_net.read_bytes()
    served = []
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: served.append(url) or FakeResponse(payload))
    url = "https://example.invalid/models/compressed_SqueezeNet.net"
    with pytest.raises(ValueError, match="expected 0{64}; not used"):
        download(url, "0" * 64)
    cache = tmp_path / "cache"
    assert served == [url]
    assert not (cache / "compressed_SqueezeNet.net").exists()
    assert not [p for p in cache.rglob("*") if p.is_file()], "a temporary file was left behind"
    good = download(url, hashlib.sha256(payload).hexdigest())
    assert good.read_bytes() == payload


def test_a_tampered_cached_file_is_fetched_again_not_used(tmp_path, monkeypatch, published_net):
    """The cache is checked on every use: a file changed after download is replaced before use."""
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path))
    payload = published_net.read_bytes()
    cached = tmp_path / "compressed_SqueezeNet.net"
    cached.write_bytes(payload[:-1] + b"\x00")
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: FakeResponse(payload))
    path = download("https://example.invalid/compressed_SqueezeNet.net", hashlib.sha256(payload).hexdigest())
    assert path == cached and cached.read_bytes() == payload
