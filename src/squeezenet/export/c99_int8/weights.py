"""Flash form of one int8 layer: the model file's entropy-coded sparse form, and how to get int8 weights from it.

Flash keeps what the .sqz keeps (Han et al. 2016, Sec. 4: "Huffman coding ... the quantized weights
and the sparse index"): the codebook (float16 when that is exact, as in the .sqz) and two canonical Huffman streams, the codes and the
relative indices (`squeezenet.export.c99_int8.huffman`), decoded filter by filter at run time, so
no RAM ever holds an expanded layer. Beside them, per output channel, the int32 bias and the
requantization of `squeezenet.int8.quantize`.

The int8 weight of an entry is a function of (channel, code): `squeezenet.int8.quantize` sets
``weight_scale[c] = float32(max |codebook value used by c| / 127)`` and ``q = round(value /
weight_scale[c])`` (float64 quotient, ties away from zero, clamped to 127). The engine computes it per
filter instead of storing it (``templates/convolution.c``), with no double on the chip (unicorn's
Cortex-M7 and many real parts have a single-precision FPU only):

- the scale as the float32 division ``largest / 127.0f``: the exact quotient of a float32 by 127 is
  never within 2**-31 (relative) of a float32 rounding midpoint, so rounding it once (float32) or
  twice (float64 then float32, the reference) gives the same float32;
- the level as ``floor(|value| / scale + 1/2)`` in exact integer arithmetic on the two floats'
  significands: the exact ratio of two float32 values is either a half-integer or at least 2**-25
  (relative) away from one, far beyond the float64 quotient's error, so the reference's float64
  round lands on the same integer.

The requantization of channel c is TFLite's ``QuantizeMultiplier`` of ``input_scale * weight_scale[c]
/ output_scale`` in float64, computed per filter too, from the layer's two activation scales: the
product of two float32 values is exact in float64, and the engine rounds the quotient to 53 bits
from an exact integer long division, as the FPU would.

Those are arguments, and the export also checks them: every layer's computed weights, scales and
(multiplier, shift) pairs are compared with ``ConvQuantization`` (the reference's own arrays). A
layer where they differ (should the reference's rules change) keeps the exact values in flash
instead: a table ``levels[channel][code]`` of int8 weights (exact for any rule that gives each
(channel, code) pair one level), and the per-channel multiplier and shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.c99_int8.stream import SymbolStream, symbol_stream
from squeezenet.export.graph import Conv
from squeezenet.int8.arithmetic import quantize_multiplier
from squeezenet.int8.quantize import ConvQuantization

__all__ = ["LayerStorage", "layer_storage", "weight_levels"]

_LARGEST_SHIFT = 36  # beyond it a ratio of float32 significands is surely below 1/2 or above 127


@dataclass(frozen=True)
class LayerStorage:
    entries: int  # stored entries, fillers included
    codes: SymbolStream
    gaps: SymbolStream
    codebook: np.ndarray  # float32
    levels: np.ndarray | None  # int8 [out_channels, codebook] when the per-filter rule is not exact, else None
    bias: np.ndarray  # int32 [out_channels]
    input_scale: float  # float32 values, from which the engine computes the rescaling
    output_scale: float
    multiplier: np.ndarray | None  # int32 [out_channels] when the computed rescaling is not exact, else None
    shift: np.ndarray | None  # int8 [out_channels], likewise
    nonzero_per_filter: int  # the most entries of one output channel with a non-zero value (decoder scratch)

    @property
    def half_codebook(self) -> np.ndarray | None:
        """The codebook as float16 when that is exact (half the flash), else None."""
        half = self.codebook.astype(np.float16)
        return half if np.isfinite(half).all() and np.array_equal(half.astype(np.float32), self.codebook) else None

    @property
    def form(self) -> str:
        """What the engine computes per filter: "computed", or which tables it reads instead."""
        tables = [name for name, table in (("level", self.levels), ("rescale", self.multiplier)) if table is not None]
        return " and ".join(tables) + " table" + "s" * (len(tables) > 1) if tables else "computed"

    @property
    def flash_bytes(self) -> int:
        tables = sum(table.nbytes for table in (self.levels, self.multiplier, self.shift) if table is not None)
        codebook = self.codebook if self.half_codebook is None else self.half_codebook
        return self.codes.flash_bytes + self.gaps.flash_bytes + codebook.nbytes + self.bias.nbytes + 8 + tables


def _float_parts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(significand, exponent) of non-negative float32 values: value = significand * 2**exponent."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.int64)
    biased = (bits >> 23) & 0xFF
    significand = np.where(biased > 0, (bits & 0x7FFFFF) | 0x800000, bits & 0x7FFFFF)
    return significand, np.where(biased > 0, biased - 150, -149)


def weight_levels(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``sign(v) * min(floor(|v| / s + 1/2), 127)`` for float32 ``values`` and positive float32
    ``scales``, exactly, as ``sq_weight_level`` in ``templates/convolution.c`` computes it."""
    values = np.asarray(values, dtype=np.float32)
    value_significand, value_exponent = _float_parts(np.abs(values))
    scale_significand, scale_exponent = _float_parts(scales)
    difference = value_exponent - scale_exponent
    up = np.clip(difference, 0, _LARGEST_SHIFT)
    down = np.clip(-difference, 0, _LARGEST_SHIFT)
    # floor((2 v + s) / (2 s)) with both sides scaled to integers by the smaller power of two.
    level = ((value_significand << (up + 1)) + (scale_significand << down)) // (scale_significand << (down + 1))
    level = np.where(difference > _LARGEST_SHIFT, 127, np.where(difference < -_LARGEST_SHIFT, 0, level))
    return (np.sign(values) * np.minimum(level, 127)).astype(np.int64)


def layer_storage(conv: Conv, layer: SparseLayer, plan: ConvQuantization, input_scale: float,
                  output_scale: float) -> LayerStorage:
    """The flash form of ``layer`` quantized by ``plan`` between activations of those scales; raises
    ValueError if it does not fit."""
    if tuple(layer.shape) != conv.weight_shape:
        raise ValueError(f"layer {conv.name}: weights of shape {tuple(layer.shape)}, expected {conv.weight_shape}")
    taps = conv.in_channels * conv.kernel * conv.kernel
    if taps > 65535:
        raise ValueError(f"unsupported layer: {conv.name} has {taps} weights per filter (at most 65535)")
    codes = np.asarray(layer.codes, dtype=np.int64)
    positions = layer.positions() if len(codes) else np.zeros(0, dtype=np.int64)
    if len(positions) and int(positions[-1]) >= layer.numel:
        raise ValueError(f"layer {conv.name}: relative indices run past its {layer.numel} weights")
    codebook = np.asarray(layer.codebook, dtype=np.float32)
    dense = np.asarray(plan.weight, dtype=np.int8).reshape(-1)
    if np.count_nonzero(dense) != np.count_nonzero(dense[positions]):
        raise ValueError(f"layer {conv.name}: the int8 weights have non-zeros outside the stored entries")
    expected = dense[positions].astype(np.int64)
    channels = positions // taps
    values = codebook[codes]
    # What the C computes per filter: the scale from the channel's largest |value|, then each level.
    largest = np.zeros(conv.out_channels, dtype=np.float32)
    np.maximum.at(largest, channels, np.abs(values))
    scales = np.where(largest > 0, largest / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    computed = weight_levels(values, scales[channels])
    levels = None
    if not (np.array_equal(computed, expected) and np.array_equal(scales, plan.weight_scale)):
        levels = np.zeros((conv.out_channels, len(codebook)), dtype=np.int8)
        levels[channels, codes] = expected
        if not np.array_equal(levels[channels, codes], expected):
            raise ValueError(f"layer {conv.name}: a code has two int8 weights in one channel")
    rescale = [quantize_multiplier(float(input_scale) * float(scale) / float(output_scale)) for scale in scales]
    exact_rescale = (np.array_equal([m for m, _ in rescale], plan.multiplier)
                     and np.array_equal([s for _, s in rescale], plan.shift))
    nonzero = np.bincount(channels[values != 0], minlength=conv.out_channels)
    return LayerStorage(
        entries=len(codes), codes=symbol_stream(codes), gaps=symbol_stream(layer.gaps), codebook=codebook,
        levels=levels, bias=np.asarray(plan.bias, dtype=np.int32), input_scale=float(np.float32(input_scale)),
        output_scale=float(np.float32(output_scale)),
        multiplier=None if exact_rescale else np.asarray(plan.multiplier, dtype=np.int32),
        shift=None if exact_rescale else np.asarray(plan.shift, dtype=np.int8),
        nonzero_per_filter=int(nonzero.max(initial=0)),
    )
