"""Report files: a markdown table, a csv with every number, PNG plots; each stamped with the
command, the machine and the date that produced it."""

from __future__ import annotations

import csv
import datetime
import io
import os
import platform
import shlex
import textwrap
from pathlib import Path

from squeezenet.safe_io import atomic_write, atomic_write_bytes

__all__ = ["Stamp", "make_stamp", "markdown_table", "write_markdown", "write_csv", "write_plot", "SEED_COLUMNS",
           "seed_columns", "seed_cells", "SEED_NOTE"]

# The per-seed columns of the sweep csv files; top1 / top5 there are the means over the seeds.
SEED_COLUMNS = ["seeds", "top1_per_seed", "top1", "top1_std", "top5"]
SEED_NOTE = ("Top-1 is the mean over the seeds ± the sample standard deviation (n - 1 denominator; the plots' "
             "error bars are ±1 of it); each seed's top-1 is listed beside it.")


class Stamp(dict):
    """``command``, ``machine``, ``date`` (UTC) of a report."""

    def line(self) -> str:
        return f"Command: `{self['command']}`  \nMachine: {self['machine']}  \nDate: {self['date']}"


def make_stamp(command: list[str]) -> Stamp:
    """``command``: the words of the command line that produced the report (quoted where needed)."""
    command = " ".join(map(shlex.quote, command))
    return Stamp(command=command, machine=machine_description(),
                 date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} CPU(s), {platform.system()}, Python {platform.python_version()}, torch {torch.__version__}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def seed_columns(row: dict) -> dict:
    """The csv values of a row summarised over seeds (lists joined with ';')."""
    return {"seeds": ";".join(str(seed) for seed in row["seeds"]),
            "top1_per_seed": ";".join(f"{value:.4f}" for value in row["top1_per_seed"])}


def seed_cells(row: dict) -> list[str]:
    """Markdown cells: seed count, each seed's top-1, the mean ± sample standard deviation."""
    spread = "" if row["top1_std"] is None else f" ± {100 * row['top1_std']:.1f}"
    return [str(len(row["seeds"])), " / ".join(f"{100 * value:.1f}%" for value in row["top1_per_seed"]),
            f"{100 * row['top1']:.1f}%{spread}"]


def write_markdown(path: Path, title: str, stamp: Stamp, sections: list[str]) -> None:
    text = f"# {title}\n\n" + "\n\n".join(sections) + f"\n\n{stamp.line()}\n"
    atomic_write_bytes(path, text.encode())


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key)) for key in columns})
    atomic_write_bytes(path, buffer.getvalue().encode())


def write_plot(path: Path, series: dict[str, list[tuple]], *, title: str, xlabel: str,
               ylabel: str, stamp: Stamp, subtitle: str, logx: bool = True) -> None:
    """A scatter-and-line plot of ``{series name: [(x, y, point label), ...]}`` as PNG.

    A point may carry a fourth value, its error bar: the half-height (symmetric) or a
    ``(below, above)`` pair, drawn as a vertical bar; None draws none."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5))
    for name, points in series.items():
        xs = [point[0] for point in points]
        ys = [point[1] for point in points]
        line = axes.plot(xs, ys, marker="o", label=name)[0]
        bars = [(point[0], point[1], point[3]) for point in points if len(point) > 3 and point[3] is not None]
        if bars:
            below = [error[0] if isinstance(error, tuple) else error for _, _, error in bars]
            above = [error[1] if isinstance(error, tuple) else error for _, _, error in bars]
            axes.errorbar([x for x, _, _ in bars], [y for _, y, _ in bars], yerr=[below, above], fmt="none",
                          ecolor=line.get_color(), capsize=3)
        for x, y, label, *_ in points:
            axes.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if logx:
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axes.xaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title + "\n" + textwrap.fill(subtitle, 100), fontsize=9)
    axes.grid(True, alpha=0.3)
    if series:  # a --cached-only report may have no finished point yet
        axes.legend(fontsize=8)
    figure.text(0.01, 0.005, f"{stamp['command']}\n{stamp['machine']} | {stamp['date']}", fontsize=6, va="bottom")
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))
    plt.close(figure)
