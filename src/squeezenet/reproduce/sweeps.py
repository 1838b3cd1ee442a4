"""What the design-space (Section 5) and bypass (Section 6) reports share: every point of the sweep
trained with the schedule's seeds, then one table of them as Markdown and CSV with the seed columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from squeezenet.reproduce.report import seed_columns, write_csv, write_markdown
from squeezenet.reproduce.runs import MissingRun, RunCache
from squeezenet.reproduce.training import Splits
from squeezenet.reproduce.variants import train_variant_seeds

__all__ = ["SweepPoint", "train_sweep", "unfinished_note", "write_sweep_table"]


@dataclass(frozen=True)
class SweepPoint:
    name: str  # in the list of unfinished runs ("simple", "SR 0.5 / pct3x3 0.25")
    progress: str  # the progress line while it trains
    metaparameters: dict  # keyword arguments of ``variants.train_variant``: squeeze_ratio, pct3x3, bypass
    row_entries: dict = field(default_factory=dict)  # beside the results in its row: the sweep, the paper's numbers


def train_sweep(points: list[SweepPoint], splits: Splits, schedule, cache: RunCache, *, show_progress: bool,
                log: Callable[[str], None]) -> tuple[list[dict], list[str]]:
    """Train (or read back) every point with the schedule's seeds. Returns the rows of the points with a
    finished seed and the names of what is not finished (a point, or ``"<point> seed <n>"``), which
    only a cache that must not compute (``--cached-only``) leaves."""
    rows, missing = [], []
    for point in points:
        log(point.progress)
        try:
            row = {**point.row_entries, **train_variant_seeds(cache, splits, schedule, **point.metaparameters,
                                                          show_progress=show_progress)}
        except MissingRun:
            missing.append(point.name)
            continue
        rows.append(row)
        missing += [f"{point.name} seed {seed}" for seed in row["missing_seeds"]]
    return rows, missing


def unfinished_note(missing: list[str]) -> str:
    """The sentence a report's notes end with when runs are missing; empty when none is."""
    if not missing:
        return ""
    return f" Not finished when this report was written (--cached-only): {', '.join(missing)}."


def write_sweep_table(out: Path, stem: str, rows: list[dict], columns: list[str], *, title: str, stamp,
                      paragraphs: list[str]) -> dict:
    """``out/<stem>.md`` (``title`` and ``paragraphs``) and ``out/<stem>.csv`` (``columns`` of the rows,
    the per-seed columns filled in); returns their paths as the reports' results name them."""
    out.mkdir(parents=True, exist_ok=True)
    write_markdown(out / f"{stem}.md", title, stamp, paragraphs)
    write_csv(out / f"{stem}.csv", [{**row, **seed_columns(row)} for row in rows], columns)
    return {"markdown": str(out / f"{stem}.md"), "csv": str(out / f"{stem}.csv")}
