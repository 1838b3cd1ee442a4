"""kill -9 at random moments during ``squeezenet compress --out`` and ``export --format c --out``.

The previous output must always be intact (byte for byte, and loadable), or the new one complete:
never a torn file, never a half-filled folder. Every other kill lands at a random moment
of a run (drawn around the length of an uninterrupted run measured in the same test); the others
land 0-20 ms after the temporary output appears beside --out, that is inside the write itself.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from squeezenet.compress.caffe_net import net_to_model, read_net
from squeezenet.compress.sqz import encode_sqz, read_sqz
from squeezenet.export.c99.export import C_FILES

# Kills per command in `make test`; RELIABILITY.md's campaign ran with SQUEEZENET_KILLS=12.
KILLS = int(os.environ.get("SQUEEZENET_KILLS", "2"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "squeezenet", *argv]


def timed_run(argv: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, env=ENV, timeout=600)
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


def kill_moments(rng: random.Random, full: float):
    """Alternately a random moment of the run, and a random 0-20 ms after the output write began."""
    for attempt in range(KILLS):
        yield attempt, ("run", full * rng.uniform(0.3, 1.1)) if attempt % 2 else ("write", rng.uniform(0, 0.02))


def test_kill_during_compress_leaves_the_old_sqz_or_the_new_one(tmp_path, published_net):
    layers = read_net(published_net)
    old = encode_sqz(net_to_model(layers).spec.to_dict(), layers, 8, "fixed")[0]  # distinguishable: another coder
    reference = tmp_path / "reference.sqz"
    argv = cli("compress", "--weights", str(published_net), "--bits", "8", "--json", "--out")
    full = timed_run([*argv, str(reference)])
    new = reference.read_bytes()
    assert new != old
    rng = random.Random(7)
    outcomes = []
    for attempt, (moment, seconds) in kill_moments(rng, full):
        target = tmp_path / f"model{attempt}.sqz"
        target.write_bytes(old)
        if moment == "run":
            finished = kill_at([*argv, str(target)], seconds)
        else:
            finished = kill_when_writing([*argv, str(target)], tmp_path, f".{target.name}.", seconds)
        found = target.read_bytes()
        assert found in (old, new), f"kill {attempt}: a torn .sqz file ({len(found)} bytes)"
        read_sqz(target)  # and it loads
        outcomes.append(f"{moment}: " + ("new" if found == new else "old") + (" (had finished)" if finished else ""))
        assert finished <= (found == new)  # a run that finished must have replaced the file
    print(f"compress killed {KILLS} times (full run {full:.1f} s): {outcomes}")


def test_kill_during_export_c_never_leaves_a_half_written_folder(tmp_path, published_net):
    reference = tmp_path / "reference"
    argv = cli("export", "--format", "c", "--weights", str(published_net), "--json", "--out")
    full = timed_run([*argv, str(reference)])
    def normalised(data: bytes, folder: Path) -> bytes:
        # The banner quotes the command, so --out differs, and so does the export ID that hashes the pair.
        data = data.replace(str(folder).encode(), b"OUT")
        return re.sub(rb"0x[0-9a-f]{8}UL", b"EXPORT_ID", data)

    new = {path.name: normalised(path.read_bytes(), reference) for path in reference.iterdir()}
    assert sorted(new) == sorted(C_FILES)
    rng = random.Random(11)
    outcomes = []
    for attempt, (moment, seconds) in kill_moments(rng, full):
        target = tmp_path / f"out{attempt}"
        if moment == "run":
            finished = kill_at([*argv, str(target)], seconds)
        else:
            finished = kill_when_writing([*argv, str(target)], tmp_path, f".{target.name}.", seconds)
        if target.exists():
            # Everything but the --out path and the export ID must match byte for byte.
            found = {path.name: normalised(path.read_bytes(), target) for path in target.iterdir()}
            assert found == new, "a half-written folder"
        else:
            assert not finished
        outcomes.append(f"{moment}: " + ("complete" if target.exists() else "absent") + (" (had finished)" if finished else ""))
        leftovers = [path.name for path in tmp_path.iterdir() if path.name.startswith(f".out{attempt}.")]
        print(f"kill {attempt}: staging folders left behind: {leftovers}")
    print(f"export --format c killed {KILLS} times (full run {full:.1f} s): {outcomes}")


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
