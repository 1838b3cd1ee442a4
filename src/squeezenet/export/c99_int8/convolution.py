"""Emitter for an int8 convolution (+ ReLU as the clamp's lower bound, or added into its output for a
complex bypass, or written through the max pool after it when the memory plan says so).

Writes the layer's flash form (`weights.LayerStorage`) as ``static const`` arrays and one ``static
inline`` function that runs the shared kernel of ``templates/convolution.c`` with the layer's
shapes and zero points (``templates/convolution_max_pool.c`` for a pooled write).
"""

from __future__ import annotations

from string import Template

from squeezenet.export.c99.literals import c_array, c_identifier
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
    $gaps8, $gaps16, $gap_bits, $weights, $codes, $code_bits, $levels, $codebook_size, $entries,
    ${prefix}_bias, ${prefix}_multiplier, ${prefix}_shift
};
""")


def function_name(conv: Conv) -> str:
    return f"layer_{c_identifier(conv.name)}"


def _layer_name(conv: Conv) -> str:
    return f"layer_{c_identifier(conv.name)}_weights"


def emit_weights(conv: Conv, storage: LayerStorage) -> str:
    """The ``static const`` arrays of one layer and the struct that points at them."""
    prefix = f"weights_{c_identifier(conv.name)}"
    form = ("int8 weight per entry" if storage.form == "weights"
            else f"{storage.code_bits}-bit codes + {storage.levels.shape[1]}-level table per channel")
    parts = [
        f"/* {conv.name}: {'x'.join(map(str, conv.weight_shape))}, {storage.entries} stored entries, "
        f"{storage.gap_bits}-bit relative indices, {form}, {storage.flash_bytes} bytes */\n",
        c_array(f"static const {storage.gap_type} {prefix}_gaps[{max(1, len(storage.gaps))}]", storage.gaps),
    ]
    if storage.form == "weights":
        parts.append(c_array(f"static const int8_t {prefix}_values[{max(1, len(storage.weights))}]", storage.weights))
    else:
        parts.append(c_array(f"static const uint8_t {prefix}_codes[{max(1, len(storage.codes))}]", storage.codes))
        parts.append(c_array(f"static const int8_t {prefix}_levels[{storage.levels.size}]", storage.levels.reshape(-1)))
    parts += [
        c_array(f"static const int32_t {prefix}_bias[{conv.out_channels}]", storage.bias),
        c_array(f"static const int32_t {prefix}_multiplier[{conv.out_channels}]", storage.multiplier),
        c_array(f"static const int8_t {prefix}_shift[{conv.out_channels}]", storage.shift),
        _LAYER.substitute(
            layer=_layer_name(conv), prefix=prefix,
            gaps8=f"{prefix}_gaps" if storage.gap_type == "uint8_t" else "NULL",
            gaps16=f"{prefix}_gaps" if storage.gap_type == "uint16_t" else "NULL",
            gap_bits=storage.gap_bits,
            weights=f"{prefix}_values" if storage.form == "weights" else "NULL",
            codes=f"{prefix}_codes" if storage.form == "levels" else "NULL",
            code_bits=storage.code_bits,
            levels=f"{prefix}_levels" if storage.form == "levels" else "NULL",
            codebook_size=storage.levels.shape[1] if storage.form == "levels" else 0,
            entries=storage.entries,
        ),
    ]
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
