"""Checks on where a reproduction will write, made before it reads any data or trains anything.

A table2 run takes hours: finding out at its end that ``--out`` is a file, or that it replaced the
committed reports and ``results/cifar10/*.sqz`` with the numbers of a wiring check, costs those hours
or the committed results. ``check_outputs`` raises a one-line ValueError for either, up front.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["report_files", "check_writable_folder", "check_outputs"]


def report_files(target: str) -> tuple[str, ...]:
    """The files a target writes into ``--out``."""
    from squeezenet.reproduce import bypass, design_space, table2

    files = {"table2": table2.REPORT_FILES, "design-space": design_space.REPORT_FILES, "bypass": bypass.REPORT_FILES}
    if target not in files:
        raise ValueError(f"unknown reproduce target {target!r}; choose from {', '.join(files)}")
    return files[target]


def check_writable_folder(path: Path, option: str) -> None:
    """``path`` is a folder this process can write into, or one it can create (the first existing
    folder above it is writable); ValueError naming ``option`` otherwise. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file, not a folder; give a folder path")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {path} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" ({existing} is not writable)"
        raise ValueError(f"{option} {path} is not writable{where}; choose another folder")


def check_outputs(target: str, *, out: Path, run_cache: Path, results: Path | None = None,
                  result_files: list[str] = (), image_cache: Path | None = None, force: bool = False) -> None:
    """Every output folder is writable; no report in ``out`` nor result file in ``results`` is
    overwritten unless ``force``."""
    check_writable_folder(out, "--out")
    check_writable_folder(run_cache, "--run-cache")
    if image_cache is not None:
        check_writable_folder(image_cache, "--cache-dir")
    if results is not None and result_files:
        check_writable_folder(results, "--results")
    if force:
        return
    existing = [out / name for name in report_files(target) if (out / name).exists()]
    if results is not None:
        existing += [results / name for name in result_files if (results / name).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ValueError(f"{existing[0]}{more} already exists and would be overwritten (committed results?); "
                         "pass --force to replace it, or write elsewhere with --out / --results")
