"""The sparse, weight-shared form of one layer that Deep Compression stores (Han et al. 2016, Sec. 2-3).

A layer is a codebook of shared values, one code per stored weight, and relative indices: for each
stored weight, the number of zeros skipped since the previous one. A zero run longer than the
largest gap is bridged by a filler entry whose code points at the codebook's 0.0 (the paper's
Figure 2 rule). Every reader and writer of compressed files goes through this form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SparseLayer"]


@dataclass
class SparseLayer:
    shape: tuple[int, ...]  # the dense weight's shape, [out, in, kh, kw] for convolutions
    codebook: np.ndarray  # float32[k]; codebook[zero_code] == 0.0
    codes: np.ndarray  # integer codes into the codebook, one per stored entry
    gaps: np.ndarray  # integer zeros skipped before each stored entry, each <= max_gap
    bias: np.ndarray  # float32[out], kept in full precision as in the paper

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    def positions(self) -> np.ndarray:
        """Flat index of every stored entry: cumsum(gap + 1) - 1."""
        return np.cumsum(self.gaps.astype(np.int64) + 1) - 1

    def dense_weight(self) -> np.ndarray:
        """Expand to the dense float32 weight; raises ValueError if the entries do not fit."""
        if len(self.codes) != len(self.gaps):
            raise ValueError(f"{len(self.codes)} codes but {len(self.gaps)} gaps")
        weight = np.zeros(self.numel, dtype=np.float32)
        if len(self.codes):
            positions = self.positions()
            if positions[-1] >= self.numel:
                raise ValueError(f"relative indices run past the layer's {self.numel} weights")
            if int(self.codes.max()) >= len(self.codebook):
                raise ValueError(f"code {int(self.codes.max())} outside a codebook of {len(self.codebook)}")
            weight[positions] = self.codebook[self.codes]
        return weight.reshape(self.shape)

    @classmethod
    def from_dense(
        cls, weight: np.ndarray, bias: np.ndarray, codebook: np.ndarray, *, max_gap: int = 15, zero_code: int = 0
    ) -> "SparseLayer":
        """Encode a weight whose non-zero values lie in ``codebook`` (each maps to its nearest entry)."""
        codebook = np.asarray(codebook, dtype=np.float32)
        if codebook[zero_code] != 0.0:
            raise ValueError(f"codebook[{zero_code}] must be 0.0 to encode filler entries")
        flat = np.asarray(weight, dtype=np.float32).reshape(-1)
        positions = np.flatnonzero(flat)
        codes = nearest_codes(flat[positions], codebook)
        # Gaps between stored entries; a run longer than max_gap needs run // (max_gap + 1) fillers.
        gaps = np.diff(positions, prepend=-1) - 1
        fillers = gaps // (max_gap + 1)
        total = len(positions) + int(fillers.sum())
        out_codes = np.full(total, zero_code, dtype=np.int64)
        out_gaps = np.full(total, max_gap, dtype=np.int64)
        real_slots = np.cumsum(fillers + 1) - 1  # where each real entry lands after its fillers
        out_codes[real_slots] = codes
        out_gaps[real_slots] = gaps % (max_gap + 1)
        return cls(tuple(weight.shape), codebook, out_codes, out_gaps, np.asarray(bias, dtype=np.float32))


def nearest_codes(values: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the nearest codebook entry for each value (exact for values taken from the codebook)."""
    order = np.argsort(codebook, kind="stable")
    sorted_book = codebook[order]
    right = np.clip(np.searchsorted(sorted_book, values), 1, len(sorted_book) - 1)
    left = right - 1
    pick_left = np.abs(values - sorted_book[left]) <= np.abs(values - sorted_book[right])
    return order[np.where(pick_left, left, right)]
