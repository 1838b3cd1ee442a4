"""Emitter for max pooling with the output size rounded up (Caffe's rule, PyTorch's ``ceil_mode=True``)."""

from __future__ import annotations

from string import Template

from squeezenet.export.c99.literals import c_identifier
from squeezenet.export.graph import MaxPool

__all__ = ["KERNEL", "function_name", "emit_function"]

KERNEL = "max_pool.c"

_FUNCTION = Template("""\
/* $name: max pool ${kernel}x$kernel stride $stride (rounded up), $channels channels, ${in_size}x$in_size -> ${out_size}x$out_size */
static inline void $function(const $element *input, $element *output)
{
    sq_max_pool(input, $channels, $in_size, $kernel, $stride, $out_size, output);
}
""")


def function_name(pool: MaxPool) -> str:
    return f"layer_{c_identifier(pool.name)}"


def emit_function(pool: MaxPool, element: str = "float") -> str:
    """The layer's function on ``element`` tensors (the int8 exporter passes ``int8_t``)."""
    return _FUNCTION.substitute(
        name=pool.name, function=function_name(pool), element=element, channels=pool.channels, kernel=pool.kernel,
        stride=pool.stride, in_size=pool.in_size, out_size=pool.out_size,
    )
