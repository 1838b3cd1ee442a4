"""Flash form of one int8 layer: the Deep Compression entry stream with int8 weights instead of floats.

The stored entries and their relative indices are the .sqz/.net sparse form unchanged (gaps 4-bit
packed when all are <= 15, else 8 or 16 bit, as `squeezenet.export.c99.convolution`). What each entry
multiplies by is stored in whichever of two exact forms is smaller for the layer:

- ``weights``: the int8 weight of each entry (one byte per entry; no codebook at all);
- ``levels``: the entry's code (4-bit packed for a codebook of at most 16 entries, else 8-bit) plus a
  table ``levels[channel][code]`` of int8 weights. Deep Compression weights are shared values and the
  int8 scale is per output channel, so each (channel, code) pair has exactly one int8 level
  (`squeezenet.int8.quantize`). Worth it only when codes pack below a byte and the table is small.

Either way the int8 weights are read back from ``ConvQuantization.weight`` (the reference's own
array), never recomputed, so the engine cannot drift from the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.c99.convolution import gap_storage
from squeezenet.export.graph import Conv
from squeezenet.int8.quantize import ConvQuantization

__all__ = ["LayerStorage", "layer_storage"]

_LARGEST_CODEBOOK_FOR_LEVELS = 256


@dataclass(frozen=True)
class LayerStorage:
    gap_bits: int
    gap_type: str  # C type of the gap array
    gaps: np.ndarray
    entries: int
    weights: np.ndarray | None  # int8 per entry (the "weights" form), else None
    code_bits: int  # 4 or 8 in the "levels" form, 0 otherwise
    codes: np.ndarray | None  # packed uint8 codes in the "levels" form
    levels: np.ndarray | None  # int8 [out_channels, codebook] in the "levels" form
    bias: np.ndarray  # int32 [out_channels]
    multiplier: np.ndarray  # int32 [out_channels]
    shift: np.ndarray  # int8 [out_channels]
    nonzero_per_filter: int  # the most non-zero weights of one output channel (decoder scratch)

    @property
    def form(self) -> str:
        return "weights" if self.weights is not None else "levels"

    @property
    def flash_bytes(self) -> int:
        values = self.weights.nbytes if self.weights is not None else self.codes.nbytes + self.levels.nbytes
        return self.gaps.nbytes + values + self.bias.nbytes + self.multiplier.nbytes + self.shift.nbytes


def _pack_nibbles(values: np.ndarray) -> np.ndarray:
    padded = np.zeros(len(values) + len(values) % 2, dtype=np.uint8)
    padded[: len(values)] = values
    return padded[0::2] | (padded[1::2] << 4)


def layer_storage(conv: Conv, layer: SparseLayer, plan: ConvQuantization) -> LayerStorage:
    """The smaller exact flash form of ``layer`` quantized by ``plan``; raises ValueError if it does not fit."""
    if tuple(layer.shape) != conv.weight_shape:
        raise ValueError(f"layer {conv.name}: weights of shape {tuple(layer.shape)}, expected {conv.weight_shape}")
    taps = conv.in_channels * conv.kernel * conv.kernel
    if taps > 65535:
        raise ValueError(f"unsupported layer: {conv.name} has {taps} weights per filter (at most 65535)")
    codes = np.asarray(layer.codes, dtype=np.int64)
    gaps = np.asarray(layer.gaps, dtype=np.int64)
    positions = layer.positions() if len(codes) else np.zeros(0, dtype=np.int64)
    if len(positions) and int(positions[-1]) >= layer.numel:
        raise ValueError(f"layer {conv.name}: relative indices run past its {layer.numel} weights")
    gap_bits, gap_type, gap_values = gap_storage(gaps)
    dense = np.asarray(plan.weight, dtype=np.int8).reshape(-1)
    if np.count_nonzero(dense) != np.count_nonzero(dense[positions]):
        raise ValueError(f"layer {conv.name}: the int8 weights have non-zeros outside the stored entries")
    entry_weights = dense[positions]
    channels = positions // taps
    nonzero = np.bincount(channels[entry_weights != 0], minlength=conv.out_channels)
    common = dict(
        gap_bits=gap_bits, gap_type=gap_type, gaps=gap_values, entries=len(codes),
        bias=np.asarray(plan.bias, dtype=np.int32), multiplier=np.asarray(plan.multiplier, dtype=np.int32),
        shift=np.asarray(plan.shift, dtype=np.int8), nonzero_per_filter=int(nonzero.max(initial=0)),
    )
    by_weight = LayerStorage(weights=entry_weights, code_bits=0, codes=None, levels=None, **common)
    codebook_size = len(layer.codebook)
    if codebook_size > _LARGEST_CODEBOOK_FOR_LEVELS:
        return by_weight
    # Each (channel, code) pair has one level; build the table from the reference's own weights.
    levels = np.zeros((conv.out_channels, codebook_size), dtype=np.int8)
    levels[channels, codes] = entry_weights
    if not np.array_equal(levels[channels, codes], entry_weights):
        return by_weight  # a code with two levels in one channel: only the per-entry form is exact
    code_bits = 4 if codebook_size <= 16 else 8
    packed = _pack_nibbles(codes.astype(np.uint8)) if code_bits == 4 else codes.astype(np.uint8)
    by_level = LayerStorage(weights=None, code_bits=code_bits, codes=packed, levels=levels, **common)
    return by_level if by_level.flash_bytes < by_weight.flash_bytes else by_weight
