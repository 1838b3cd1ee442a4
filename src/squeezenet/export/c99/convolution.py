"""Emitter for a convolution (+ ReLU, or accumulated into its output for a bypass).

Writes the layer's compressed weights as ``static const`` arrays (codebook, codes, relative indices,
bias) and one ``static inline`` function that expands them into the scratch buffers and runs the
shared kernel of ``templates/convolution.c``. Stride and padding are handled by preparing a
zero-padded, phase-split copy of the input (``sq_prepare``); a 1x1 stride-1 unpadded convolution
reads its input in place. A 1x1 layer with many input channels runs them in blocks,
so that the slice of input a tile reads stays in the L1 cache.
"""

from __future__ import annotations

from string import Template

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.c99.literals import c_array, c_identifier
from squeezenet.export.graph import Conv

__all__ = ["KERNEL", "function_name", "emit_weights", "emit_function", "plane_shape", "prepared_floats",
           "expanded_weights", "weight_bytes", "gap_storage"]

KERNEL = "convolution.c"
# Input channels per block of a 1x1 layer (see sq_convolve): 64 channels of a 48-float SSE2 tile are
# 12 KiB of input, which stays in a 32 KiB L1 cache while every output channel reads it.
_BLOCK_CHANNELS = 64

_FUNCTION = Template("""\
/* $name: $in_channels -> $out_channels channels, ${kernel}x$kernel stride $stride padding $padding, \
${in_size}x$in_size -> ${out_size}x$out_size, $activation */
static inline void $function(const float *input, float *output)
{
$prepare    sq_expand(&$layer, $out_channels, $in_channels, $kernel, $stride, $plane_height, $plane_width, $blocks,
              $block_taps);
    sq_convolve($source, $layer.bias, $out_channels, $out_size, $out_size, $plane_width, $mode, $blocks, output);
}
""")

_PREPARE = Template("""\
    sq_prepare(input, $in_channels, $in_size, $in_size, $padding, $stride, $plane_height, $plane_width, sq_prepared);
""")

_LAYER = Template("""\
static const sq_compressed_layer $layer = {
    ${prefix}_codebook, $codes8, $codes16, $gaps8, $gaps16, $gap_bits, $entries, ${prefix}_bias
};
""")


def function_name(conv: Conv) -> str:
    return f"layer_{c_identifier(conv.name)}"


def _reads_in_place(conv: Conv) -> bool:
    # The first layer always copies: the caller's input buffer has no slack for the last tile.
    return conv.kernel == 1 and conv.stride == 1 and conv.padding == 0 and conv.layer > 0


def plane_shape(conv: Conv) -> tuple[int, int]:
    """Height and width of one (phase) plane the kernel reads."""
    if _reads_in_place(conv):
        return conv.in_size, conv.in_size
    side = -(-(conv.in_size + 2 * conv.padding) // conv.stride)
    return side, side


def _block_channels(conv: Conv, row_capacity: int) -> int:
    """Input channels per block that the layer's tiles run through one after another (see
    sq_convolve): fewer than all only for a 1x1 layer with many input channels whose output rows are
    as wide as its planes, and only as many blocks as sq_rows (``row_capacity`` entries, one per
    output channel and block and the end) holds; the blocks are made as even as possible."""
    _, plane_width = plane_shape(conv)
    if conv.kernel != 1 or conv.stride != 1 or not conv.relu or plane_width != conv.out_size:
        return conv.in_channels
    blocks = max(1, min(-(-conv.in_channels // _BLOCK_CHANNELS), (row_capacity - 1) // conv.out_channels))
    return -(-conv.in_channels // blocks)


def prepared_floats(conv: Conv) -> int:
    """Floats of the padded, phase-split input copy (0 when the input is read in place)."""
    if _reads_in_place(conv):
        return 0
    height, width = plane_shape(conv)
    return conv.in_channels * conv.stride * conv.stride * height * width


def expanded_weights(layer: SparseLayer) -> int:
    """Entries the expanded layer keeps: the stored ones whose codebook value is not zero."""
    return int(np.count_nonzero(np.asarray(layer.codebook)[np.asarray(layer.codes, dtype=np.int64)]))


def gap_storage(gaps: np.ndarray) -> tuple[int, str, np.ndarray]:
    """(bits, C type, stored values) of relative indices: 4-bit packed two a byte (low nibble first)
    when all fit 15, else 8 or 16 bits; the fp32 and int8 engines store them alike."""
    largest = int(gaps.max()) if len(gaps) else 0
    if largest <= 15:
        padded = np.zeros(len(gaps) + len(gaps) % 2, dtype=np.uint8)
        padded[: len(gaps)] = gaps
        return 4, "uint8_t", padded[0::2] | (padded[1::2] << 4)
    if largest <= 255:
        return 8, "uint8_t", gaps.astype(np.uint8)
    if largest <= 65535:
        return 16, "uint16_t", gaps.astype(np.uint16)
    raise ValueError(f"unsupported layer: relative index {largest} does not fit 16 bits")


def weight_bytes(layer: SparseLayer) -> int:
    """Flash bytes of this layer's arrays (codebook, codes, relative indices, bias)."""
    code_bytes = 1 if len(layer.codebook) <= 256 else 2
    _, _, gaps = gap_storage(np.asarray(layer.gaps, dtype=np.int64))
    return 4 * len(layer.codebook) + code_bytes * len(layer.codes) + gaps.nbytes + 4 * len(layer.bias)


def emit_weights(conv: Conv, layer: SparseLayer) -> str:
    """The ``static const`` arrays of one layer and the struct that points at them."""
    if tuple(layer.shape) != conv.weight_shape:
        raise ValueError(f"layer {conv.name}: weights of shape {tuple(layer.shape)}, expected {conv.weight_shape}")
    if len(layer.codebook) > 65536:
        raise ValueError(f"unsupported layer: {conv.name} has a codebook of {len(layer.codebook)} entries (at most 65536)")
    codes = np.asarray(layer.codes, dtype=np.int64)
    gaps = np.asarray(layer.gaps, dtype=np.int64)
    if len(codes) and int(layer.positions()[-1]) >= layer.numel:
        raise ValueError(f"layer {conv.name}: relative indices run past its {layer.numel} weights")
    prefix = f"weights_{c_identifier(conv.name)}"
    code_type = "uint8_t" if len(layer.codebook) <= 256 else "uint16_t"
    gap_bits, gap_type, gap_values = gap_storage(gaps)
    entries = len(codes)
    parts = [
        f"/* {conv.name}: {'x'.join(map(str, conv.weight_shape))}, {entries} stored entries, "
        f"{len(layer.codebook)}-entry codebook, {gap_bits}-bit relative indices */\n",
        c_array(f"static const float {prefix}_codebook[{len(layer.codebook)}]", layer.codebook, float_values=True),
        c_array(f"static const {code_type} {prefix}_codes[{max(1, entries)}]", codes),
        c_array(f"static const {gap_type} {prefix}_gaps[{max(1, len(gap_values))}]", gap_values),
        c_array(f"static const float {prefix}_bias[{conv.out_channels}]", layer.bias, float_values=True),
        _LAYER.substitute(
            layer=f"layer_{c_identifier(conv.name)}_weights",
            prefix=prefix,
            codes8=f"{prefix}_codes" if code_type == "uint8_t" else "NULL",
            codes16=f"{prefix}_codes" if code_type == "uint16_t" else "NULL",
            gaps8=f"{prefix}_gaps" if gap_type == "uint8_t" else "NULL",
            gaps16=f"{prefix}_gaps" if gap_type == "uint16_t" else "NULL",
            gap_bits=gap_bits,
            entries=entries,
        ),
    ]
    return "".join(parts)


def emit_function(conv: Conv, *, row_capacity: int) -> str:
    """The layer's ``static inline`` function: (input, output) -> output of this convolution.
    ``row_capacity``: the entries of sq_rows (SQUEEZENET_SCRATCH_ROWS)."""
    plane_height, plane_width = plane_shape(conv)
    block_channels = _block_channels(conv, row_capacity)
    values = dict(
        name=conv.name,
        function=function_name(conv),
        layer=f"layer_{c_identifier(conv.name)}_weights",
        in_channels=conv.in_channels,
        out_channels=conv.out_channels,
        kernel=conv.kernel,
        stride=conv.stride,
        padding=conv.padding,
        in_size=conv.in_size,
        out_size=conv.out_size,
        plane_height=plane_height,
        plane_width=plane_width,
        activation="ReLU" if conv.relu else "added to the output (bypass)",
        mode="SQ_STORE_RELU" if conv.relu else "SQ_ACCUMULATE",
        blocks=-(-conv.in_channels // block_channels),
        block_taps=block_channels * conv.kernel**2,
    )
    if _reads_in_place(conv):
        return _FUNCTION.substitute(values, prepare="", source="input")
    return _FUNCTION.substitute(values, prepare=_PREPARE.substitute(values), source="sq_prepared")
