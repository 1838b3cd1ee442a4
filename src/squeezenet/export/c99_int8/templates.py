"""The C templates beside this module: each int8 operator's shared kernel and the model file's frame."""

from __future__ import annotations

from importlib import resources
from string import Template

__all__ = ["kernel_source", "render"]


def kernel_source(name: str) -> str:
    """The text of ``templates/<name>`` (plain C, copied once into the generated file)."""
    return resources.files("squeezenet.export.c99_int8").joinpath("templates", name).read_text(encoding="utf-8")


def render(name: str, **values) -> str:
    """``templates/<name>`` with its ``$placeholders`` filled; a missing value is an error."""
    return Template(kernel_source(name)).substitute(values)
