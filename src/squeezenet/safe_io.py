"""Writes that never leave a half-written file: write a temporary file beside the target, then rename."""

from __future__ import annotations

import glob
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write_bytes", "atomic_write", "remove_stale_temporaries", "new_file_mode", "new_folder_mode",
           "mode_for_rewrite", "make_parent_folders", "write_error"]

# A temporary untouched this long belongs to a writer that was killed (kill -9, power loss): even a
# multi-GB checkpoint is written in minutes, and a live writer keeps its file's mtime fresh.
STALE_SECONDS = 6 * 3600


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    current = os.umask(0o022)
    os.umask(current)
    return current


def new_file_mode() -> int:
    """The permission bits ``open(path, "w")`` gives a new file (0o666 less the umask): mkstemp's
    temporaries are private (0o600), and a finished output must not stay so."""
    return 0o666 & ~_umask()


def new_folder_mode() -> int:
    """The permission bits ``mkdir`` gives a new folder (0o777 less the umask); mkdtemp's are private."""
    return 0o777 & ~_umask()


def mode_for_rewrite(target: Path) -> int:
    """The mode ``target`` keeps when it is rewritten: its own when it exists, else a new file's."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:  # absent (or unreadable): an ordinary new file
        return new_file_mode()


def write_error(target: Path, error: OSError) -> OSError:
    """``error`` as one line naming ``target``, not the hidden temporary beside it."""
    reason = (error.strerror or str(error)).strip().lower() or error.__class__.__name__
    try:
        return error.__class__(f"cannot write {target}: {reason}")
    except TypeError:  # a subclass with its own constructor: the plain kind says the same
        return OSError(f"cannot write {target}: {reason}")


def make_parent_folders(target: Path) -> None:
    """Create the missing folders above ``target`` (``mkdir -p``), as every command's output does."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # exist_ok covers folders only: a file stands where a folder should
        raise NotADirectoryError(f"cannot write {target}: {_first_file_above(target)} is a file, not a folder") from None
    except NotADirectoryError:
        raise NotADirectoryError(f"cannot write {target}: {_first_file_above(target)} is a file, not a folder") from None
    except OSError as error:
        raise write_error(target, error) from None


def _first_file_above(target: Path) -> Path:
    for ancestor in reversed(target.parents):
        if ancestor.exists() and not ancestor.is_dir():
            return ancestor
    return target.parent


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
    """Call ``write(temporary_path)``, fsync, then rename over ``path``; the old file survives any crash.

    Missing parent folders are created. A new file gets the mode ``open`` would give it (0o666 less
    the umask); a rewritten file keeps its own. OS errors name ``path``, never the temporary."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{target} is a folder, not a file")
    make_parent_folders(target)
    remove_stale_temporaries(target)
    mode = mode_for_rewrite(target)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise write_error(target, error) from None
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, OSError) and temporary in (error.filename, error.filename2):
            raise write_error(target, error) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(data)

    atomic_write(path, write)
