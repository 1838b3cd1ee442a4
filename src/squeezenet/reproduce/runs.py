"""A cache of finished runs, keyed by a hash of everything that decides their result.

A run (one training, one compression, one evaluation) is described by a ``settings`` dict: the
architecture spec, the data folder and split, the schedule, the compression settings, the key of
the run it starts from, and ``CODE_VERSION``. Its folder is ``<root>/<name>-<hash>``; the run is
finished when ``result.json`` is there, written atomically as its last act. A rerun with the same
settings reads that file instead of working; a changed setting changes the hash and is redone,
and every run built on it too (their settings hold its key).

An interrupted training resumes: ``folder / "train"`` is handed to the trainer as its run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from squeezenet.safe_io import atomic_write_bytes

__all__ = ["CODE_VERSION", "MissingRun", "Run", "RunCache", "settings_key"]

# Raise when a change to the reproduction code changes the results of a run with unchanged settings.
CODE_VERSION = 1


def settings_key(settings: dict) -> str:
    """A stable hash of ``settings`` (JSON with sorted keys) and ``CODE_VERSION``."""
    try:
        text = json.dumps({"code_version": CODE_VERSION, **settings}, sort_keys=True, separators=(",", ":"))
    except TypeError as error:
        raise ValueError(f"run settings must be plain JSON values: {error}") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class MissingRun(LookupError):
    """A run that is not in the cache, asked of a cache that must not compute (``compute=False``)."""


@dataclass
class Run:
    name: str
    key: str
    folder: Path
    result: dict
    reused: bool


@dataclass
class RunCache:
    root: Path
    computed: list[str] = field(default_factory=list)  # "<name>-<key>" of the runs done by this cache
    reused: list[str] = field(default_factory=list)  # ... and of the runs read back from disk
    compute: bool = True  # False: only read finished runs back; a missing one raises MissingRun

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def folder(self, name: str, settings: dict) -> Path:
        if not name or "/" in name or os.sep in name:
            raise ValueError(f"bad run name {name!r}")
        return self.root / f"{name}-{settings_key(settings)}"

    def run(self, name: str, settings: dict, compute: Callable[[Path], dict]) -> Run:
        """The finished run for ``settings``: read from the cache, or ``compute(folder)`` now.

        ``compute`` writes its files into ``folder`` and returns a JSON-able result dict.
        """
        folder = self.folder(name, settings)
        key = folder.name.rsplit("-", 1)[1]
        done = folder / "result.json"
        if done.exists():
            try:
                result = json.loads(done.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                result = None  # a damaged record: redo the run
            if isinstance(result, dict):
                self.reused.append(folder.name)
                return Run(name, key, folder, result, True)
        if not self.compute:
            raise MissingRun(name)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / "settings.json", json.dumps(settings, indent=1, sort_keys=True).encode())
        result = compute(folder)
        # The trainer's resume state is only needed while the run is unfinished.
        shutil.rmtree(folder / "train", ignore_errors=True)
        atomic_write_bytes(done, json.dumps(result, indent=1, sort_keys=True).encode())
        self.computed.append(folder.name)
        return Run(name, key, folder, result, False)
