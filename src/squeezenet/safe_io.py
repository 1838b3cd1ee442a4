"""Writes that never leave a half-written file: write a temporary file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write_bytes", "atomic_write"]


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)``, fsync, then rename over ``path``; the old file survives any crash."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{target} is a folder, not a file")
    if not target.parent.exists():
        raise FileNotFoundError(f"folder {target.parent} does not exist")
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
