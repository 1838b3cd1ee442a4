"""Write a set of files into a folder so that no half-written file is ever left behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from squeezenet.safe_io import remove_stale_temporaries

__all__ = ["write_files"]


def write_files(folder: str | os.PathLike, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (name -> bytes) into ``folder``: first into a temporary folder beside it, then
    renamed into place. Raises ValueError when ``folder`` is an existing file."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ValueError(f"output folder {target} is a file")
    parent = target.resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"folder {parent} does not exist")
    remove_stale_temporaries(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if not target.exists():
            os.replace(staging, target)
        else:
            for name in files:
                os.replace(staging / name, target / name)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return [target / name for name in files]
