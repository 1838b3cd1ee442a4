"""One entropy-coded symbol stream in flash (a layer's codes, or its relative indices), decoded in C
one symbol at a time (``templates/stream.c``).

Each stream takes the smaller of two coders:

- ``huffman``: the bit string `squeezenet.compress.entropy` writes for its canonical Huffman coder
  (MSB first, lengths at most 15), byte for byte, so a Huffman-coded .sqz keeps exactly its file's
  bits. Instead of the 4-bit length per alphabet symbol, flash holds what a canonical decoder walks:
  how many codes each length has, and the present symbols in canonical order (by length, then
  value). No lookup table: a symbol of L bits costs L steps.
- ``rans``: our static rANS (`squeezenet.export.c99_int8.rans`) with its cumulative frequency table,
  for the streams where whole-bit codes waste space (peaked relative indices, a .sqz ``ans`` layer,
  whose constriction model a small C decoder cannot reproduce).

Either way the decoder's state is a few words, carried from one output channel to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezenet.compress.bytestream import ByteReader
from squeezenet.compress.entropy import HUFFMAN_MAX_LENGTH, MAX_ALPHABET, encode_symbols
from squeezenet.export.c99.literals import c_array
from squeezenet.export.c99_int8.rans import rans_bytes, rans_encode, rans_frequencies

__all__ = ["KERNEL", "SymbolStream", "emit_stream", "symbol_stream"]

KERNEL = "stream.c"


@dataclass(frozen=True)
class SymbolStream:
    coder: str  # "huffman" or "rans"
    payload: bytes
    counts: np.ndarray | None = None  # huffman: uint16 [15], codes of length 1, 2, ...
    symbols: np.ndarray | None = None  # huffman: present symbols in canonical order, uint8 or uint16
    cumulative: np.ndarray | None = None  # rans: uint16 [alphabet + 1], cumulative frequencies

    @property
    def flash_bytes(self) -> int:
        """The payload (with the Huffman decoder's 2 bytes of padding) and the decoding tables."""
        if self.coder == "huffman":
            return len(self.payload) + 2 + self.counts.nbytes + self.symbols.nbytes
        return len(self.payload) + self.cumulative.nbytes


def _huffman(symbols: np.ndarray) -> SymbolStream:
    data = encode_symbols(symbols, "huffman")
    # The stream: varint alphabet, 4-bit code lengths (high nibble first), varint payload size, payload.
    reader = ByteReader(data)
    alphabet = reader.varint("alphabet size", MAX_ALPHABET)
    packed = np.frombuffer(reader.take((alphabet + 1) // 2, "Huffman length table"), np.uint8)
    lengths = np.stack([packed >> 4, packed & 0x0F], axis=1).reshape(-1)[:alphabet].astype(np.int64)
    payload = bytes(reader.take(reader.varint("Huffman payload size", reader.remaining), "Huffman payload"))
    order = np.lexsort((np.arange(alphabet), lengths))
    order = order[lengths[order] > 0]
    counts = np.bincount(lengths, minlength=HUFFMAN_MAX_LENGTH + 1)[1:].astype(np.uint16)
    return SymbolStream("huffman", payload, counts=counts,
                        symbols=order.astype(np.uint8 if alphabet <= 256 else np.uint16))


def symbol_stream(symbols: np.ndarray) -> SymbolStream:
    """The smaller exact stream of ``symbols`` (non-negative ints below ``MAX_ALPHABET``)."""
    symbols = np.asarray(symbols, dtype=np.int64).reshape(-1)
    if symbols.size == 0:
        return SymbolStream("huffman", b"", counts=np.zeros(HUFFMAN_MAX_LENGTH, np.uint16),
                            symbols=np.zeros(0, np.uint8))
    huffman = _huffman(symbols)
    frequencies = rans_frequencies(symbols)
    if frequencies is None:
        return huffman
    cumulative = np.concatenate([[0], np.cumsum(frequencies)]).astype(np.uint16)  # 2**14 fits
    if rans_bytes(symbols, frequencies) + cumulative.nbytes >= huffman.flash_bytes:
        return huffman  # encoding is the slow part: skip it when the estimate already loses
    rans = SymbolStream("rans", rans_encode(symbols, frequencies), cumulative=cumulative)
    return rans if rans.flash_bytes < huffman.flash_bytes else huffman


def emit_stream(prefix: str, stream: SymbolStream) -> tuple[str, str]:
    """(the stream's ``static const`` arrays, the ``sq_stream`` initializer that points at them)."""
    # Two zero bytes after a Huffman payload: the decoder reads a 16-bit window past its last code.
    payload = stream.payload + (b"\0\0" if stream.coder == "huffman" else b"")
    arrays = [c_array(f"static const uint8_t {prefix}_bits[{max(1, len(payload))}]", payload)]
    if stream.coder == "rans":
        cumulative = stream.cumulative
        arrays.append(c_array(f"static const uint16_t {prefix}_cumulative[{len(cumulative)}]", cumulative))
        return "".join(arrays), f"{{{prefix}_bits, NULL, NULL, NULL, {prefix}_cumulative, {len(cumulative) - 1}}}"
    symbol_type = "uint8_t" if stream.symbols.dtype == np.uint8 else "uint16_t"
    arrays += [
        c_array(f"static const uint16_t {prefix}_counts[{HUFFMAN_MAX_LENGTH}]", stream.counts),
        c_array(f"static const {symbol_type} {prefix}_symbols[{max(1, len(stream.symbols))}]", stream.symbols),
    ]
    symbols8 = f"{prefix}_symbols" if symbol_type == "uint8_t" else "NULL"
    symbols16 = f"{prefix}_symbols" if symbol_type == "uint16_t" else "NULL"
    return "".join(arrays), f"{{{prefix}_bits, {prefix}_counts, {symbols8}, {symbols16}, NULL, 0}}"
