"""Emitter for int8 max pooling with the output size rounded up (Caffe's rule), in place in the arena.

The float exporter's emitter and kernel (`squeezenet.export.c99.max_pool`, ``max_pool.c``) on int8
elements: a maximum needs no requantization, since input and output share scale and zero point."""

from __future__ import annotations

from squeezenet.export.c99 import max_pool as float_max_pool
from squeezenet.export.c99.max_pool import KERNEL, function_name
from squeezenet.export.graph import MaxPool

__all__ = ["KERNEL", "function_name", "emit_function"]


def emit_function(pool: MaxPool) -> str:
    return float_max_pool.emit_function(pool, element="int8_t")
