"""A static rANS coder small enough to decode on a microcontroller: 14-bit frequencies, a 32-bit state,
16-bit words.

The .sqz ``ans`` coder is constriction's, whose model quantization happens inside constriction and
which a small C decoder cannot reproduce; its symbols are re-encoded here at export. rANS (Duda
2013, "Asymmetric numeral systems") with the state ``x`` kept in [2**16, 2**32): a symbol ``s`` of
frequency ``f[s]`` out of 2**14 and cumulative frequency ``c[s]`` decodes as ``s`` where ``c[s] <= x
mod 2**14 < c[s] + f[s]``, then ``x = f[s] * (x >> 14) + (x mod 2**14) - c[s]``, and a 16-bit word
is shifted in while ``x < 2**16``. The encoder runs the symbols backwards; the stream is the final
state (4 bytes, little-endian) then the words in decoding order (2 bytes each, little-endian).
Unlike Huffman, no symbol costs a whole bit, which matters for the peaked relative indices.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PRECISION_BITS", "rans_bytes", "rans_encode", "rans_frequencies"]

PRECISION_BITS = 14
_TOTAL = 1 << PRECISION_BITS
_LOW = 1 << 16  # the state's lower bound; one 16-bit word renormalizes it


def rans_frequencies(symbols: np.ndarray) -> np.ndarray | None:
    """Frequencies (int64, summing to 2**14, each present symbol at least 1), or None when the
    alphabet has too many present symbols to give each one."""
    counts = np.bincount(np.asarray(symbols, dtype=np.int64))
    present = counts > 0
    if present.sum() > _TOTAL // 4:
        return None
    frequencies = np.where(present, np.maximum(1, np.rint(counts * (_TOTAL / counts.sum()))), 0).astype(np.int64)
    # The rounding leaves the sum a little off 2**14: the most frequent symbol absorbs it.
    largest = int(np.argmax(frequencies))
    frequencies[largest] += _TOTAL - int(frequencies.sum())
    return frequencies if frequencies[largest] >= 1 else None


def rans_bytes(symbols: np.ndarray, frequencies: np.ndarray) -> int:
    """The payload size ``rans_encode`` gives, to within a word: the ideal cost at these frequencies."""
    bits = -np.log2(frequencies[np.asarray(symbols, dtype=np.int64)] / _TOTAL).sum()
    return 4 + 2 * int(np.ceil(bits / 16))


def rans_encode(symbols: np.ndarray, frequencies: np.ndarray) -> bytes:
    """The stream of ``symbols`` at ``frequencies`` (from `rans_frequencies`)."""
    cumulative = np.concatenate([[0], np.cumsum(frequencies)]).tolist()
    frequency = frequencies.tolist()
    state, words = _LOW, []
    for symbol in reversed(np.asarray(symbols, dtype=np.int64).tolist()):
        f = frequency[symbol]
        # Shift words out until encoding keeps the state below 2**32 (decoding restores them).
        while state >= f << (32 - PRECISION_BITS):
            words.append(state & 0xFFFF)
            state >>= 16
        state = (state // f << PRECISION_BITS) + state % f + cumulative[symbol]
    return state.to_bytes(4, "little") + np.array(words[::-1], dtype="<u2").tobytes()
