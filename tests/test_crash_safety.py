"""kill -9 while files are being written: the file on disk is always whole.

- a checkpoint rewritten in a loop (``save_checkpoint``): `make test` kills the writer once, the slow
  campaign ``SQUEEZENET_KILLS`` times;
- ``squeezenet compress --out`` and ``export --format c --out``: the previous output must always be
  intact (byte for byte, and loadable), or the new one complete: never a torn file, never a
  half-filled folder. `make test` kills each command once, 0-20 ms after its temporary output
  appears beside --out, that is inside the write itself; the slow campaigns (`make test-slow`) kill
  it ``SQUEEZENET_KILLS`` times (default 6; RELIABILITY.md's campaign ran 12), alternately at a
  random moment of a run (drawn around the length of an uninterrupted run measured in the same test)
  and inside the write.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import cli_argv, run_cli_process

from squeezenet.compress.sqz import read_sqz
from squeezenet.export.c99.export import C_FILES
from squeezenet.weights import load_model

CAMPAIGN_KILLS = int(os.environ.get("SQUEEZENET_KILLS", "6"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


WRITER = textwrap.dedent(
    """
    import sys, torch
    from squeezenet.models import squeezenet_cifar
    from squeezenet.weights import save_checkpoint
    path = sys.argv[1]
    model = squeezenet_cifar()
    version = 0
    while True:  # rewrite the same file forever, each version's biases all equal to its number
        version += 1
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.fill_(float(version))
        save_checkpoint(path, model, version=version)
        if version == 1:
            print("ready", flush=True)  # a whole checkpoint is on disk: from now on one must always be
    """
)


def checkpoint_kills(tmp_path, kills: int) -> list[int]:
    """Kill the writer ``kills`` times at a random moment after its first checkpoint (most likely
    inside torch.save); the file must be one whole version each time. Returns the versions found."""
    path = tmp_path / "checkpoint.pth"
    rng = random.Random(1234)
    versions = []
    for _ in range(kills):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.3 + rng.random())
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        model = load_model(path)  # a torn file would fail to load here
        biases = {float(p.detach().flatten()[0]) for n, p in model.named_parameters() if n.endswith("bias")}
        assert len(biases) == 1, "a checkpoint mixing two versions"
        payload = torch.load(path, weights_only=True)
        assert biases == {float(payload["version"])} and payload["version"] >= 1
        versions.append(payload["version"])
    assert not [p for p in tmp_path.iterdir() if p.name != "checkpoint.pth" and not p.name.endswith(".tmp")]
    return versions


def test_kill_during_checkpoint_writes_leaves_a_whole_file(tmp_path):
    assert len(checkpoint_kills(tmp_path, 1)) == 1


@pytest.mark.slow
def test_kills_at_random_moments_of_checkpoint_writes_leave_a_whole_file(tmp_path):
    print(f"versions found after each kill: {checkpoint_kills(tmp_path, CAMPAIGN_KILLS)}")


def in_process(args: list[str]) -> None:
    """The uninterrupted reference run, in this process (no interpreter start-up): the same bytes."""
    from squeezenet.cli import main

    assert main(args) == 0


def timed_run(argv: list[str]) -> float:
    start = time.monotonic()
    finished = run_cli_process(*argv[3:], env=ENV, timeout=600)
    assert finished.returncode == 0, finished.stderr
    return time.monotonic() - start


def kill_at(argv: list[str], seconds: float) -> bool:
    """Start ``argv``, SIGKILL it after ``seconds``; True when it had already finished."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        process.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return False


def kill_when_writing(argv: list[str], folder, prefix: str, delay: float) -> bool:
    """Start ``argv`` and SIGKILL it ``delay`` seconds after its temporary output (a name starting
    with ``prefix`` and ending in ``.tmp`` in ``folder``) appears; True when it finished first."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    while process.poll() is None:
        if any(name.startswith(prefix) and name.endswith(".tmp") for name in os.listdir(folder)):
            time.sleep(delay)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return False
        time.sleep(0.0005)
    return True


def kill_command(argv: list[str], target: Path, moment: str, seconds: float) -> bool:
    """Kill the command writing ``target`` at a random ``moment == "run"`` or inside its write; True
    when it had finished first."""
    if moment == "run":
        return kill_at(argv, seconds)
    return kill_when_writing(argv, target.parent, f".{target.name}.", seconds)


def kill_moments(rng: random.Random, kills: int, full: float | None = None):
    """Alternately a random 0-20 ms after the output write began, and (with ``full``, the length of
    an uninterrupted run) a random moment of the run."""
    for attempt in range(kills):
        run = full is not None and attempt % 2
        yield attempt, ("run", full * rng.uniform(0.3, 1.1)) if run else ("write", rng.uniform(0, 0.02))


def compress_kills(tmp_path, published_net, kills: int, timed: bool, *, old: bytes, new: bytes | None = None):
    """``old``: the file the kills find at --out (the published model in another coder); ``new``: the
    uninterrupted run's output, or None to make it here (timed, in a fresh interpreter)."""
    argv = cli_argv("compress", "--weights", str(published_net), "--bits", "8", "--json", "--out")
    full = None
    if timed:
        reference = tmp_path / "reference.sqz"
        full = timed_run([*argv, str(reference)])
        new = reference.read_bytes()
    assert new != old
    rng = random.Random(7)
    outcomes = []
    for attempt, (moment, seconds) in kill_moments(rng, kills, full):
        target = tmp_path / f"model{attempt}.sqz"
        target.write_bytes(old)
        finished = kill_command([*argv, str(target)], target, moment, seconds)
        found = target.read_bytes()
        assert found in (old, new), f"kill {attempt}: a torn .sqz file ({len(found)} bytes)"
        read_sqz(target)  # and it loads
        outcomes.append(f"{moment}: " + ("new" if found == new else "old") + (" (had finished)" if finished else ""))
        assert finished <= (found == new)  # a run that finished must have replaced the file
    print(f"compress killed {kills} times: {outcomes}")
    return outcomes


def test_kill_inside_the_compress_write_leaves_the_old_sqz_or_the_new_one(tmp_path, published_net,
                                                                           published_encodings, published_sqz8):
    # The uninterrupted output: the same command run once in this process (conftest's published_sqz8).
    outcomes = compress_kills(tmp_path, published_net, 1, timed=False, old=published_encodings["fixed"],
                              new=published_sqz8.read_bytes())
    assert len(outcomes) == 1


@pytest.mark.slow
def test_kill_during_compress_at_random_moments_leaves_the_old_sqz_or_the_new_one(tmp_path, published_net,
                                                                                  published_encodings):
    outcomes = compress_kills(tmp_path, published_net, CAMPAIGN_KILLS, timed=True, old=published_encodings["fixed"])
    assert len(outcomes) == CAMPAIGN_KILLS


def export_c_kills(tmp_path, published_net, kills: int, timed: bool):
    reference = tmp_path / "reference"
    argv = cli_argv("export", "--format", "c", "--weights", str(published_net), "--json", "--out")
    full = timed_run([*argv, str(reference)]) if timed else in_process([*argv[3:], str(reference)])
    def normalised(data: bytes, folder: Path) -> bytes:
        # The banner quotes the command, so --out differs, and so does the export ID that hashes the pair.
        data = data.replace(str(folder).encode(), b"OUT")
        return re.sub(rb"0x[0-9a-f]{8}UL", b"EXPORT_ID", data)

    new = {path.name: normalised(path.read_bytes(), reference) for path in reference.iterdir()}
    assert sorted(new) == sorted(C_FILES)
    rng = random.Random(11)
    outcomes = []
    for attempt, (moment, seconds) in kill_moments(rng, kills, full if timed else None):
        target = tmp_path / f"out{attempt}"
        finished = kill_command([*argv, str(target)], target, moment, seconds)
        if target.exists():
            # Everything but the --out path and the export ID must match byte for byte.
            found = {path.name: normalised(path.read_bytes(), target) for path in target.iterdir()}
            assert found == new, "a half-written folder"
        else:
            assert not finished
        outcomes.append(f"{moment}: " + ("complete" if target.exists() else "absent") + (" (had finished)" if finished else ""))
        leftovers = [path.name for path in tmp_path.iterdir() if path.name.startswith(f".out{attempt}.")]
        print(f"kill {attempt}: staging folders left behind: {leftovers}")
    print(f"export --format c killed {kills} times: {outcomes}")
    return outcomes


def test_kill_inside_the_export_c_write_never_leaves_a_half_written_folder(tmp_path, published_net):
    assert len(export_c_kills(tmp_path, published_net, 1, timed=False)) == 1


@pytest.mark.slow
def test_kill_during_export_c_at_random_moments_never_leaves_a_half_written_folder(tmp_path, published_net):
    assert len(export_c_kills(tmp_path, published_net, CAMPAIGN_KILLS, timed=True)) == CAMPAIGN_KILLS


def test_leftovers_of_killed_writes_are_removed_once_stale(tmp_path):
    from squeezenet.export.output_folder import write_files
    from squeezenet.safe_io import STALE_SECONDS, atomic_write_bytes

    target = tmp_path / "model.sqz"
    stale_file, fresh_file = tmp_path / ".model.sqz.a1.tmp", tmp_path / ".model.sqz.b2.tmp"
    other = tmp_path / ".other.sqz.c3.tmp"  # another target's: not touched
    stale_folder = tmp_path / ".c.d4.tmp"
    for path in (stale_file, fresh_file, other):
        path.write_bytes(b"half")
    stale_folder.mkdir()
    (stale_folder / "model.c").write_text("half")
    old = time.time() - STALE_SECONDS - 60
    for path in (stale_file, other, stale_folder):
        os.utime(path, (old, old))
    atomic_write_bytes(target, b"new")
    write_files(tmp_path / "c", {"model.c": b"int x;\n"})
    assert target.read_bytes() == b"new" and (tmp_path / "c" / "model.c").read_bytes() == b"int x;\n"
    assert not stale_file.exists() and not stale_folder.exists()
    assert fresh_file.exists() and other.exists()  # a fresh one may belong to a live writer
