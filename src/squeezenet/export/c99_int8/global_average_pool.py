"""Emitter for the int8 global average pool: int32 sums of ``q - zero_point``, no requantization."""

from __future__ import annotations

from string import Template

from squeezenet.export.c99.literals import c_identifier
from squeezenet.export.graph import GlobalAveragePool

__all__ = ["KERNEL", "function_name", "emit_function"]

KERNEL = "global_average_pool.c"

_FUNCTION = Template("""\
/* $name: global average pool, $channels channels of ${in_size}x$in_size, as int32 sums */
static inline void $function(const int8_t *input, int32_t *sums)
{
    sq_global_sum(input, $channels, $pixels, $zero_point, sums);
}
""")


def function_name(pool: GlobalAveragePool) -> str:
    return f"layer_{c_identifier(pool.name)}"


def emit_function(pool: GlobalAveragePool, zero_point: int) -> str:
    """``zero_point``: that of the classifier convolution's output, the tensor being pooled."""
    return _FUNCTION.substitute(name=pool.name, function=function_name(pool), channels=pool.channels,
                                in_size=pool.in_size, pixels=pool.in_size * pool.in_size, zero_point=zero_point)
