"""C literals and arrays: float32 values that round-trip exactly, integer tables wrapped at a fixed width."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

__all__ = ["c_float", "c_array", "c_identifier"]

_PER_LINE = 16


def c_float(value: float) -> str:
    """A C float literal equal to the float32 ``value`` (9 significant digits round-trip float32)."""
    value = float(np.float32(value))
    if not math.isfinite(value):
        raise ValueError(f"cannot write the non-finite weight {value} into C")
    text = f"{value:.9g}"
    if not any(mark in text for mark in ".en"):
        text += ".0"
    return f"{text}f"


def c_identifier(name: str) -> str:
    """``features.3.expand1x1`` -> ``features_3_expand1x1``."""
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def c_array(declaration: str, values: Iterable, *, float_values: bool = False) -> str:
    """``declaration = { ... };`` with ``_PER_LINE`` values per line, e.g. ``static const uint8_t codes[3]``."""
    formatted = [c_float(v) for v in values] if float_values else [str(int(v)) for v in values]
    if not formatted:
        formatted = ["0"]  # C99 forbids empty initialisers; a layer with no entries never reads it
    lines = (", ".join(formatted[start : start + _PER_LINE]) for start in range(0, len(formatted), _PER_LINE))
    body = ",\n    ".join(lines)
    return f"{declaration} = {{\n    {body}\n}};\n"
