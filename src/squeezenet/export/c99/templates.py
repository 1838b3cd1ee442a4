"""The C templates beside this module: each operator's shared kernel and the model file's frame.

`ExporterTemplates` reads them for the float exporter here and for the int8 one
(`squeezenet.export.c99_int8.templates`), which takes the kernels written for both from this folder."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from string import Template

__all__ = ["SHARED_KERNELS", "ExporterTemplates", "kernel_source", "render"]

_PACKAGE = "squeezenet.export.c99"
# Kernels written once for the float and the int8 exporter, kept here: their element type and the
# model.h macro that sizes their buffer are placeholders that each exporter fills in.
SHARED_KERNELS = ("max_pool.c",)


@dataclass(frozen=True)
class ExporterTemplates:
    """One exporter's ``templates/`` folder (``package``) and its element type for the shared kernels."""

    package: str
    elements: dict[str, str]  # "element" (the C type) and "pool_row_capacity" (a model.h macro)

    def kernel_source(self, name: str) -> str:
        """The text of ``templates/<name>`` (plain C, copied once into the generated file)."""
        if name in SHARED_KERNELS:
            return Template(_text(_PACKAGE, name)).substitute(self.elements)
        return _text(self.package, name)

    def render(self, name: str, **values) -> str:
        """``templates/<name>`` with its ``$placeholders`` filled; a missing value is an error."""
        return Template(_text(self.package, name)).substitute(values)


def _text(package: str, name: str) -> str:
    return resources.files(package).joinpath("templates", name).read_text(encoding="utf-8")


_FLOAT = ExporterTemplates(_PACKAGE, {"element": "float", "pool_row_capacity": "SQUEEZENET_POOL_ROW_FLOATS"})
kernel_source = _FLOAT.kernel_source
render = _FLOAT.render
