"""kill -9 at random moments while a checkpoint is being rewritten: the file on disk is always whole."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import torch

from squeezenet.weights import load_model

WRITER = textwrap.dedent(
    """
    import sys, torch
    from squeezenet.models import squeezenet_cifar
    from squeezenet.weights import save_checkpoint
    path = sys.argv[1]
    model = squeezenet_cifar()
    version = 0
    print("ready", flush=True)
    while True:  # rewrite the same file forever, each version's biases all equal to its number
        version += 1
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.fill_(float(version))
        save_checkpoint(path, model, version=version)
    """
)


def test_kill_during_checkpoint_writes_leaves_a_whole_file(tmp_path):
    path = tmp_path / "checkpoint.pth"
    rng = random.Random(1234)
    for attempt in range(3):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.3 + rng.random())  # a random moment, most likely inside torch.save
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        if not path.exists():
            continue  # killed before the first rename: nothing was promised yet
        model = load_model(path)  # a torn file would fail to load here
        biases = {float(p.detach().flatten()[0]) for n, p in model.named_parameters() if n.endswith("bias")}
        assert len(biases) == 1, "a checkpoint mixing two versions"
        payload = torch.load(path, weights_only=True)
        assert biases == {float(payload["version"])}
    assert path.exists(), "no checkpoint was completed in three runs"
    assert not [p for p in tmp_path.iterdir() if p.name != "checkpoint.pth" and not p.name.endswith(".tmp")]
