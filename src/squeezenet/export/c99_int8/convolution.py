"""Emitter for an int8 convolution (+ ReLU as the clamp's lower bound, or added into its output for a
complex bypass, or written through the max pool after it when the memory plan says so).

Writes the layer's flash form (`weights.LayerStorage`: codebook, Huffman streams, per-channel
constants) as ``static const`` arrays and one ``static inline`` function that runs the shared kernel
of ``templates/convolution.c`` with the layer's shapes and zero points
(``templates/convolution_max_pool.c`` for a pooled write).
"""

from __future__ import annotations

from string import Template

import numpy as np

from squeezenet.export.c99.literals import c_array, c_float, c_identifier
from squeezenet.export.c99_int8.stream import emit_stream
from squeezenet.export.c99_int8.weights import LayerStorage
from squeezenet.export.graph import Conv, MaxPool
from squeezenet.int8.quantize import Quantization

__all__ = ["KERNEL", "POOLED_KERNEL", "function_name", "emit_weights", "emit_function"]

KERNEL = "convolution.c"
POOLED_KERNEL = "convolution_max_pool.c"  # only needed when a layer writes through a max pool

_FUNCTION = Template("""\
/* $name: $in_channels -> $out_channels channels, ${kernel}x$kernel stride $stride padding $padding, \
${in_size}x$in_size -> ${out_size}x$out_size, $activation */
static inline void $function(const int8_t *input, int8_t *output)
{
    sq_convolve(&$layer, input, $in_channels, $in_size, $input_zero_point, $out_channels, $kernel, $stride, $padding,
                $out_size, $output_zero_point, $low, $bypass, output);
}
""")

_POOLED_FUNCTION = Template("""\
/* $name: $in_channels -> $out_channels channels, ${kernel}x$kernel stride $stride padding $padding, \
${in_size}x$in_size -> ${out_size}x$out_size, $activation, written through $pool (max pool \
${pool_kernel}x$pool_kernel stride $pool_stride) -> ${pooled_size}x$pooled_size */
static inline void $function(const int8_t *input, int8_t *output)
{
    sq_convolve_max_pool(&$layer, input, $in_channels, $in_size, $input_zero_point, $out_channels, $kernel, $stride,
                         $padding, $out_size, $output_zero_point, $low, $pool_kernel, $pool_stride, $pooled_size,
                         output);
}
""")

_LAYER = Template("""\
static const sq_int8_layer $layer = {
    $codes,
    $gaps,
    $entries, $codebook, $codebook16, $levels, $codebook_size,
    ${prefix}_bias, $multiplier, $shift, $input_scale, $output_scale
};
""")


def function_name(conv: Conv) -> str:
    return f"layer_{c_identifier(conv.name)}"


def _layer_name(conv: Conv) -> str:
    return f"layer_{c_identifier(conv.name)}_weights"


def emit_weights(conv: Conv, storage: LayerStorage) -> str:
    """The ``static const`` arrays of one layer and the struct that points at them."""
    prefix = f"weights_{c_identifier(conv.name)}"
    codes, code_stream = emit_stream(f"{prefix}_codes", storage.codes)
    gaps, gap_stream = emit_stream(f"{prefix}_gaps", storage.gaps)
    levels = ("int8 weights and rescaling computed per filter" if storage.form == "computed"
              else f"int8 weights and rescaling per filter from the {storage.form}")
    half = storage.half_codebook
    summary = (f"/* {conv.name}: {'x'.join(map(str, conv.weight_shape))}, {storage.entries} stored entries, codes "
               f"({storage.codes.coder}, {storage.codes.flash_bytes} bytes), relative indices ({storage.gaps.coder}, "
               f"{storage.gaps.flash_bytes} bytes), {len(storage.codebook)}-entry "
               f"{'float32' if half is None else 'float16'} codebook, {levels}, {storage.flash_bytes} bytes */\n")
    parts = [summary, codes, gaps]
    if half is None:
        parts.append(c_array(f"static const float {prefix}_codebook[{max(1, len(storage.codebook))}]",
                             storage.codebook, float_values=True))
    else:
        parts.append(c_array(f"static const uint16_t {prefix}_codebook[{max(1, len(half))}]", half.view(np.uint16)))
    if storage.levels is not None:
        parts.append(c_array(f"static const int8_t {prefix}_levels[{storage.levels.size}]", storage.levels.reshape(-1)))
    parts.append(c_array(f"static const int32_t {prefix}_bias[{conv.out_channels}]", storage.bias))
    if storage.multiplier is not None:
        parts += [c_array(f"static const int32_t {prefix}_multiplier[{conv.out_channels}]", storage.multiplier),
                  c_array(f"static const int8_t {prefix}_shift[{conv.out_channels}]", storage.shift)]
    parts.append(_LAYER.substitute(
        layer=_layer_name(conv), prefix=prefix, codes=code_stream, gaps=gap_stream, entries=storage.entries,
        codebook="NULL" if half is not None else f"{prefix}_codebook",
        codebook16="NULL" if half is None else f"{prefix}_codebook",
        levels="NULL" if storage.levels is None else f"{prefix}_levels", codebook_size=len(storage.codebook),
        multiplier="NULL" if storage.multiplier is None else f"{prefix}_multiplier",
        shift="NULL" if storage.multiplier is None else f"{prefix}_shift",
        input_scale=c_float(storage.input_scale), output_scale=c_float(storage.output_scale),
    ))
    return "".join(parts)


def emit_function(conv: Conv, quantization: Quantization, bypass: str | None = None,
                  pool: MaxPool | None = None) -> str:
    """The layer's ``static inline`` function; ``bypass`` names the ``sq_addition`` its result is added
    with; ``pool``: the max pool it writes through (then its output is the pooled tensor)."""
    if bypass is not None and pool is not None:
        raise ValueError(f"layer {conv.name}: a bypass addition cannot be written through a max pool")
    plan = quantization.convolutions[conv.layer]
    output_zero_point = quantization.activations[plan.output].zero_point
    values = dict(
        name=conv.name, function=function_name(conv), layer=_layer_name(conv),
        in_channels=conv.in_channels, out_channels=conv.out_channels, kernel=conv.kernel, stride=conv.stride,
        padding=conv.padding, in_size=conv.in_size, out_size=conv.out_size,
        input_zero_point=quantization.activations[plan.input].zero_point,
        output_zero_point=output_zero_point,
        low=max(output_zero_point, -128) if conv.relu else -128,
        activation=("ReLU" if conv.relu else "no ReLU")
        + ("" if bypass is None else ", added into the output (bypass)"),
    )
    if pool is not None:
        return _POOLED_FUNCTION.substitute(values, pool=pool.name, pool_kernel=pool.kernel, pool_stride=pool.stride,
                                           pooled_size=pool.out_size)
    return _FUNCTION.substitute(values, bypass="NULL" if bypass is None else f"&{bypass}")
