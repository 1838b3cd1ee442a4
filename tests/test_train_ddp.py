"""DDP: two CPU processes (gloo) under torchrun train exactly like one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from squeezenet.models import model_from_spec
from test_train import _slice

REPO = Path(__file__).resolve().parents[1]


def _train(prefix: list[str], data: Path, cache: Path, out: Path) -> dict:
    # No BatchNorm and no dropout: per-process BN statistics and dropout masks are the only things
    # that legitimately differ between one process and two.
    command = [*prefix, "squeezenet", "train", "--arch", "squeezenet_cifar", "--dropout", "0", "--precision", "fp32",
               "--data", str(data), "--val-split", "4", "--epochs", "1", "--batch-size", "8", "--lr", "0.02",
               "--threads", "1", "--cache-dir", str(cache), "--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_two_process_ddp_matches_one_process(tmp_path):
    data = _slice(tmp_path / "data", per_class=20)
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    distributed = _train([torchrun, "--standalone", "--nproc-per-node", "2", "-m"], data, tmp_path / "cache",
                         tmp_path / "ddp")
    single = _train([sys.executable, "-m"], data, tmp_path / "cache", tmp_path / "single")
    assert distributed["world_size"] == 2 and single["world_size"] == 1
    assert distributed["replica_max_difference"] == 0.0  # the two replicas hold identical weights
    ddp_checkpoint = torch.load(tmp_path / "ddp" / "final.pth", weights_only=True)
    single_weights = torch.load(tmp_path / "single" / "final.pth", weights_only=True)["model"]
    for name, weight in single_weights.items():
        torch.testing.assert_close(ddp_checkpoint["model"][name], weight, rtol=1e-4, atol=1e-5)
    # Training moved the weights away from their (seeded) initial values, so agreeing is not trivial.
    torch.manual_seed(0)
    initial = model_from_spec(ddp_checkpoint["spec"]).state_dict()
    assert any(not torch.allclose(initial[name], single_weights[name], atol=1e-4) for name in initial)
    # Only rank 0 wrote files.
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["final.pth", "last.pth", "metrics.jsonl", "train.lock"]
