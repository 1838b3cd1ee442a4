"""Write a set of files into a folder so that no half-written file is ever left behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from squeezenet.safe_io import make_parent_folders, mode_for_rewrite, new_folder_mode, remove_stale_temporaries, write_error

__all__ = ["write_files"]


def write_files(folder: str | os.PathLike, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (name -> bytes) into ``folder``: first into a temporary folder beside it, then
    renamed into place. Missing parent folders are created; files get the modes `atomic_write` gives.
    Raises ValueError when ``folder`` is an existing file."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ValueError(f"output folder {target} is a file")
    make_parent_folders(target)
    parent = target.resolve().parent
    remove_stale_temporaries(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as error:
        raise write_error(target, error) from None
    os.chmod(staging, new_folder_mode())  # mkdtemp makes it private; the result is an ordinary folder
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(staging / name, mode_for_rewrite(target / name))
        if not target.exists():
            os.replace(staging, target)
        else:
            for name in files:
                os.replace(staging / name, target / name)
    except OSError as error:
        raise write_error(target, error) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return [target / name for name in files]
