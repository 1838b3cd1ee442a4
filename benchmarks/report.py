"""Write one benchmark's section of BENCHMARKS.md, leaving the other sections as they are.

Each benchmark owns the text between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``; the section
states the command, the machine and the date, so every figure can be reproduced.
"""

from __future__ import annotations

import datetime
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from squeezenet.reproduce.report import machine_description  # noqa: E402
from squeezenet.safe_io import atomic_write_bytes  # noqa: E402

__all__ = ["write_section", "machine_description"]

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nEvery figure below was measured by the command shown, on the machine and date shown.\n"


def write_section(name: str, title: str, command: str, body: str, *, machine: str | None = None,
                  date: str | None = None) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md. ``machine`` and ``date`` default to
    this machine and today; a report drawn from runs made elsewhere passes theirs."""
    stamp = date or datetime.date.today().isoformat()
    section = (
        f"<!-- begin:{name} -->\n## {title}\n\n"
        f"Command: `{command}`  \nMachine: {machine or machine_description()}  \nDate: {stamp}\n\n{body.strip()}\n"
        f"<!-- end:{name} -->"
    )
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    pattern = re.compile(rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    atomic_write_bytes(BENCHMARKS, text.encode())
