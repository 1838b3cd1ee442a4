"""The C templates beside this module: each int8 operator's shared kernel and the model file's frame.

A kernel written for both exporters (`squeezenet.export.c99.templates.SHARED_KERNELS`) comes from
the float exporter's folder, on int8 elements."""

from __future__ import annotations

from squeezenet.export.c99.templates import ExporterTemplates

__all__ = ["kernel_source", "render"]

_INT8 = ExporterTemplates("squeezenet.export.c99_int8",
                          {"element": "int8_t", "pool_row_capacity": "SQUEEZENET_POOL_ROW_BYTES"})
kernel_source = _INT8.kernel_source
render = _INT8.render
