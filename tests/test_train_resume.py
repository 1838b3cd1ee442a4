"""Crash safety: a run stopped mid-epoch (SIGTERM) or killed (SIGKILL) and resumed ends exactly
where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from test_train import _slice

REPO = Path(__file__).resolve().parents[1]


def _command(data: Path, cache: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "squeezenet", "train", "--arch", "squeezenet_cifar_bn", "--data", str(data),
            "--val-split", "4", "--epochs", "2", "--batch-size", "4", "--lr", "0.05", "--threads", "1",
            "--cache-dir", str(cache), "--out", str(out), "--json", *extra]


def _run(command: list[str]) -> dict:
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def _interrupt_in_second_epoch(command: list[str], out: Path, signal_number: int) -> subprocess.CompletedProcess:
    """Start a run and signal it as soon as the first epoch's checkpoint exists (early in epoch 2)."""
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "metrics.jsonl").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _final_weights(out: Path) -> dict:
    return torch.load(out / "final.pth", map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = _slice(root / "data", per_class=20)
    result = _run(_command(data, root / "cache", root / "reference"))
    return root, data, result


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL])
def test_resumed_run_matches_uninterrupted_run(uninterrupted, signal_number):
    root, data, reference = uninterrupted
    out = root / f"stopped-{signal_number}"
    stopped = _interrupt_in_second_epoch(_command(data, root / "cache", out), out, signal_number)
    state = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    steps_per_epoch = (3 * 16) // 4
    if signal_number == signal.SIGTERM:
        assert stopped.returncode == 130, stopped.stderr
        assert "continue with --resume" in stopped.stderr
        assert state["epoch"] == 1 and 0 < state["step"] < steps_per_epoch  # saved mid-epoch
    else:
        assert stopped.returncode == -signal.SIGKILL
        assert not (out / "final.pth").exists()
        assert (state["epoch"], state["step"]) == (1, 0)  # the last per-epoch checkpoint
    resumed = _run(_command(data, root / "cache", out, "--resume"))
    assert resumed["top1"] == reference["top1"] and resumed["loss"] == pytest.approx(reference["loss"], rel=1e-6)
    expected, actual = _final_weights(root / "reference"), _final_weights(out)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
