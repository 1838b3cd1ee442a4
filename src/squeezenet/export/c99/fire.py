"""Emitter for a Fire module: squeeze, expand 1x1 and 3x3 side by side, then the bypass.

The concatenation costs nothing: in [channel][height][width] order the expand 3x3 output simply
starts ``expand1x1.out_channels`` planes after the expand 1x1 output. The simple bypass adds the
module's input (``templates/add.c``); the complex one is a 1x1 convolution accumulated into the
output, without ReLU, as in Section 6 of the paper.
"""

from __future__ import annotations

from string import Template

from squeezenet.export.c99 import convolution
from squeezenet.export.c99.literals import c_identifier
from squeezenet.export.graph import Conv, Fire

__all__ = ["KERNEL", "function_name", "emit_function", "convolutions"]

KERNEL = "add.c"  # only needed by the simple bypass

_FUNCTION = Template("""\
/* $name: Fire module, squeeze $squeeze, expand $expand1x1 (1x1) + $expand3x3 (3x3) -> $out_channels \
channels at ${size}x$size, $bypass_note */
static inline void $function(const float *input, float *output)
{
    $squeeze_function(input, sq_squeezed);
    $expand1x1_function(sq_squeezed, output);
    $expand3x3_function(sq_squeezed, output + $expand3x3_offset);
$bypass}
""")


def function_name(fire: Fire) -> str:
    return f"layer_{c_identifier(fire.name)}"


def convolutions(fire: Fire) -> list[Conv]:
    found = [fire.squeeze, fire.expand1x1, fire.expand3x3]
    return found + [fire.bypass] if isinstance(fire.bypass, Conv) else found


def emit_function(fire: Fire, *, row_capacity: int) -> str:
    """The Fire module's function; its convolutions' functions are emitted before it.
    ``row_capacity``: the entries of sq_rows (see `convolution.emit_function`)."""
    if fire.bypass == "identity":
        bypass, note = f"    sq_add(input, {fire.out_channels * fire.size * fire.size}, output);\n", "simple bypass"
    elif isinstance(fire.bypass, Conv):
        bypass, note = f"    {convolution.function_name(fire.bypass)}(input, output);\n", "complex bypass"
    else:
        bypass, note = "", "no bypass"
    inner = "".join(convolution.emit_function(conv, row_capacity=row_capacity) + "\n" for conv in convolutions(fire))
    return inner + _FUNCTION.substitute(
        name=fire.name,
        function=function_name(fire),
        squeeze=fire.squeeze.out_channels,
        expand1x1=fire.expand1x1.out_channels,
        expand3x3=fire.expand3x3.out_channels,
        out_channels=fire.out_channels,
        size=fire.size,
        bypass_note=note,
        squeeze_function=convolution.function_name(fire.squeeze),
        expand1x1_function=convolution.function_name(fire.expand1x1),
        expand3x3_function=convolution.function_name(fire.expand3x3),
        expand3x3_offset=fire.expand1x1.out_channels * fire.size * fire.size,
        bypass=bypass,
    )
