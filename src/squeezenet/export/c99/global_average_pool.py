"""Emitter for global average pooling: one value per channel, written straight into the logits."""

from __future__ import annotations

from string import Template

from squeezenet.export.c99.literals import c_identifier
from squeezenet.export.graph import GlobalAveragePool

__all__ = ["KERNEL", "function_name", "emit_function"]

KERNEL = "global_average_pool.c"

_FUNCTION = Template("""\
/* $name: global average pool, $channels channels of ${in_size}x$in_size */
static inline void $function(const float *input, float *output)
{
    sq_global_average_pool(input, $channels, $pixels, output);
}
""")


def function_name(pool: GlobalAveragePool) -> str:
    return f"layer_{c_identifier(pool.name)}"


def emit_function(pool: GlobalAveragePool) -> str:
    return _FUNCTION.substitute(
        name=pool.name, function=function_name(pool), channels=pool.channels, in_size=pool.in_size,
        pixels=pool.in_size * pool.in_size,
    )
