"""Progress bars for long work: shown on a terminal, off with --json or when stderr is not a terminal."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

__all__ = ["progress"]

T = TypeVar("T")


def progress(iterable: Iterable[T] | None, *, total: int | None = None, desc: str = "", enabled: bool = True, unit: str = "it"):
    """Wrap ``iterable`` in a tqdm bar on stderr when ``enabled`` and stderr is a terminal; with
    ``iterable=None`` the caller counts with ``bar.update(n)`` (images rather than batches)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not (enabled and sys.stderr.isatty()),
                leave=False, dynamic_ncols=True)
