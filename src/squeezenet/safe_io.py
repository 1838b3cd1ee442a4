"""Writes that never leave a half-written file: write a temporary file beside the target, then rename."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write_bytes", "atomic_write", "remove_stale_temporaries"]

# A temporary untouched this long belongs to a writer that was killed (kill -9, power loss): even a
# multi-GB checkpoint is written in minutes, and a live writer keeps its file's mtime fresh.
STALE_SECONDS = 6 * 3600


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete the leftovers of killed writes to ``target`` (``.NAME.*.tmp`` files or folders beside it
    not modified for ``STALE_SECONDS``); returns what was removed. Fresh ones may be another writer's."""
    removed = []
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        try:
            if time.time() - leftover.stat().st_mtime < STALE_SECONDS:
                continue
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
            removed.append(leftover)
        except OSError:  # gone already, or not ours to remove: leave it
            continue
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)``, fsync, then rename over ``path``; the old file survives any crash."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{target} is a folder, not a file")
    if not target.parent.exists():
        raise FileNotFoundError(f"folder {target.parent} does not exist")
    remove_stale_temporaries(target)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(data)

    atomic_write(path, write)
