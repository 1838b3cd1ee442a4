"""Emitter for an int8 Fire module: squeeze, expand 1x1 and 3x3 into one concatenated tensor, bypass.

Both expand convolutions requantize straight into the concatenation's scale, so the concatenation
costs nothing: the 3x3 output starts ``expand1x1.out_channels`` planes in. The simple bypass adds the
module's input with TFLite ADD (``templates/add.c``, ``templates/add_input.c``); the complex one is a 1x1 convolution (no
ReLU) whose int8 result is added into the output channel by channel as it is produced, so it needs
no buffer of its own. The squeeze output lives in the arena where the memory plan puts it. Without a
bypass, both expands can write through the max pool after the module (pooling is per channel, so the
pooled concatenation is the concatenation of the pooled expands).
"""

from __future__ import annotations

from string import Template

from squeezenet.export.c99.literals import c_identifier
from squeezenet.export.c99_int8 import convolution
from squeezenet.export.graph import Conv, Fire, MaxPool
from squeezenet.int8.quantize import Quantization

__all__ = ["KERNEL", "SIMPLE_BYPASS_KERNEL", "function_name", "addition_name", "emit_addition", "emit_function"]

KERNEL = "add.c"  # TFLite ADD, also used by a complex bypass convolution
SIMPLE_BYPASS_KERNEL = "add_input.c"  # only needed by the simple bypass

_FUNCTION = Template("""\
/* $name: Fire module, squeeze $squeeze, expand $expand1x1 (1x1) + $expand3x3 (3x3) -> $out_channels \
channels at ${size}x$size, $bypass_note */
static inline void $function(const int8_t *input, int8_t *squeezed, int8_t *output)
{
    $squeeze_function(input, squeezed);
    $expand1x1_function(squeezed, output);
    $expand3x3_function(squeezed, output + $expand3x3_offset);
$bypass}
""")

_ADDITION = Template("""\
static const sq_addition $name = {
    $first_zero_point, $second_zero_point, $output_zero_point,
    $first_multiplier, $first_shift, $second_multiplier, $second_shift, $output_multiplier, $output_shift
};
""")


def function_name(fire: Fire) -> str:
    return f"layer_{c_identifier(fire.name)}"


def addition_name(fire: Fire) -> str:
    return f"addition_{c_identifier(fire.name)}"


def emit_addition(fire: Fire, quantization: Quantization) -> str:
    """The ``sq_addition`` constants of a Fire module with a bypass."""
    plan = quantization.additions[fire.name]
    zero_point = {name: quantization.activations[name].zero_point for name in (plan.first, plan.second, plan.output)}
    return _ADDITION.substitute(
        name=addition_name(fire), first_zero_point=zero_point[plan.first],
        second_zero_point=zero_point[plan.second], output_zero_point=zero_point[plan.output],
        first_multiplier=plan.first_multiplier, first_shift=plan.first_shift,
        second_multiplier=plan.second_multiplier, second_shift=plan.second_shift,
        output_multiplier=plan.output_multiplier, output_shift=plan.output_shift,
    )


def emit_function(fire: Fire, quantization: Quantization, pool: MaxPool | None = None) -> str:
    """The Fire module's function, after its convolutions' functions; ``pool``: the max pool both
    expands write through (a module without a bypass only)."""
    if pool is not None and fire.bypass is not None:
        raise ValueError(f"layer {fire.name}: a Fire module with a bypass cannot be written through a max pool")
    inner = [convolution.emit_function(fire.squeeze, quantization)]
    inner += [convolution.emit_function(conv, quantization, pool=pool) for conv in (fire.expand1x1, fire.expand3x3)]
    if fire.bypass == "identity":
        count = fire.out_channels * fire.size * fire.size
        bypass, note = f"    sq_add(input, {count}, &{addition_name(fire)}, output);\n", "simple bypass"
    elif isinstance(fire.bypass, Conv):
        inner.append(convolution.emit_function(fire.bypass, quantization, bypass=addition_name(fire)))
        bypass, note = f"    {convolution.function_name(fire.bypass)}(input, output);\n", "complex bypass"
    else:
        bypass, note = "", "no bypass" + ("" if pool is None else f", written through {pool.name}")
    plane = fire.size * fire.size if pool is None else pool.out_size * pool.out_size
    return "".join(text + "\n" for text in inner) + _FUNCTION.substitute(
        name=fire.name, function=function_name(fire), squeeze=fire.squeeze.out_channels,
        expand1x1=fire.expand1x1.out_channels, expand3x3=fire.expand3x3.out_channels,
        out_channels=fire.out_channels, size=fire.size, bypass_note=note,
        squeeze_function=convolution.function_name(fire.squeeze),
        expand1x1_function=convolution.function_name(fire.expand1x1),
        expand3x3_function=convolution.function_name(fire.expand3x3),
        expand3x3_offset=fire.expand1x1.out_channels * plane, bypass=bypass,
    )
