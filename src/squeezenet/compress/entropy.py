"""Entropy coding of the two symbol streams of the sparse form: codes and gaps (Han et al. 2016, Sec. 4).

The paper: "We use Huffman coding to compress the quantized weights and the sparse index" because
both are far from uniform. Three coders share one stream layout, so a file can say which it used:

- ``fixed``: every symbol in ceil(log2 alphabet) bits, the paper's uncoded baseline;
- ``huffman``: canonical Huffman, as in the paper; the code-length table (4 bits per symbol, lengths
  at most 15) is stored in the stream and the codes are rebuilt from it;
- ``ans``: range asymmetric numeral systems (``constriction``'s AnsCoder) with a categorical model
  whose table is stored as 5-bit log-probabilities (half-bit steps). Unlike Huffman it is not limited
  to whole bits per symbol, which matters for the peaked gap distribution.

A stream is: varint alphabet size, the coder's table, varint payload length, payload. The symbol
count is not stored here: the caller knows it (one count per layer serves codes and gaps). Every
decoder checks each declared size against the bytes left and the caller's bounds before it
allocates, and decodes exactly ``count`` symbols, so a hostile stream can neither allocate nor spin.
Bits are packed and unpacked in blocks, so memory stays a few bytes per symbol for any layer size;
decoded symbols are uint16 (every alphabet is below 4096).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from squeezenet.compress.bytestream import ByteReader, varint

__all__ = ["CODERS", "MAX_ALPHABET", "encode_symbols", "decode_symbols", "huffman_code_lengths"]

CODERS = ("fixed", "huffman", "ans")
MAX_ALPHABET = 4096  # codes of up to 12 bits, gaps up to 4095
_SYMBOL_DTYPE = np.uint16
_BLOCK = 1 << 18  # symbols (or bits) handled per vectorised block
HUFFMAN_MAX_LENGTH = 15  # fits the 4-bit length table
_ANS_LEVELS = 31  # 5-bit table entries: 0 = absent, v >= 1 means p ~ 2**(-(v - 1) / 2)
# Exact integer weights 2**(32 - k/2): float64-exact, so encoder and decoder build the same model everywhere.
_ANS_WEIGHTS = np.array([0] + [math.isqrt(1 << (64 - k)) for k in range(_ANS_LEVELS)], dtype=np.float64)


def encode_symbols(symbols: np.ndarray, coder: str) -> bytes:
    """One stream holding ``symbols`` (non-negative ints below ``MAX_ALPHABET``)."""
    if coder not in CODERS:
        raise ValueError(f"unknown coder {coder!r}; choose from {', '.join(CODERS)}")
    symbols = np.asarray(symbols).reshape(-1)
    if symbols.size == 0:
        return b""
    if symbols.min() < 0 or symbols.max() >= MAX_ALPHABET:
        raise ValueError(f"symbols must lie in [0, {MAX_ALPHABET}), got [{symbols.min()}, {symbols.max()}]")
    alphabet = int(symbols.max()) + 1
    counts = np.bincount(symbols, minlength=alphabet)
    if coder == "fixed":
        return varint(alphabet) + _pack_fixed(symbols, _fixed_width(alphabet))
    if coder == "huffman":
        lengths = huffman_code_lengths(counts)
        payload = _pack_bits(symbols, _canonical_codes(lengths), lengths)
        return varint(alphabet) + _pack_fixed(lengths, 4) + varint(len(payload)) + payload
    levels = _ans_levels(counts)
    # A one-symbol alphabet needs no payload: the count says it all.
    words = _ans_encode(symbols, levels) if alphabet > 1 else np.zeros(0, np.uint32)
    return varint(alphabet) + _pack_fixed(levels, 5) + varint(len(words)) + words.astype("<u4").tobytes()


def decode_symbols(reader: ByteReader, coder: str, count: int, max_alphabet: int = MAX_ALPHABET) -> np.ndarray:
    """Read one stream of exactly ``count`` symbols, each below ``max_alphabet``, from ``reader``."""
    if coder not in CODERS:
        raise ValueError(f"unknown coder {coder!r}")
    if count == 0:
        return np.zeros(0, dtype=_SYMBOL_DTYPE)
    alphabet = reader.varint("alphabet size", min(max_alphabet, MAX_ALPHABET))
    if alphabet < 1:
        raise ValueError("empty alphabet for a non-empty stream (corrupt file)")
    if coder == "fixed":
        width = _fixed_width(alphabet)
        packed = reader.take((count * width + 7) // 8, "fixed-width symbols")
        symbols = _unpack_fixed(packed, count, width)
        if int(symbols.max()) >= alphabet:
            raise ValueError(f"symbol {int(symbols.max())} outside its alphabet of {alphabet} (corrupt file)")
        return symbols
    if coder == "huffman":
        lengths = _unpack_fixed(reader.take((alphabet + 1) // 2, "Huffman length table"), alphabet, 4).astype(np.int64)
        size = reader.varint("Huffman payload size", reader.remaining)
        return _huffman_decode(reader.take(size, "Huffman payload"), lengths, count)
    levels = _unpack_fixed(reader.take((5 * alphabet + 7) // 8, "ANS probability table"), alphabet, 5).astype(np.int64)
    if not levels.any():
        raise ValueError("ANS probability table has no symbols (corrupt file)")
    # Each symbol costs at most 24 bits at constriction's precision: a longer payload is a lie.
    words = reader.varint("ANS payload size", count + 2)
    payload = np.frombuffer(reader.take(4 * words, "ANS payload"), dtype="<u4").astype(np.uint32)
    if alphabet == 1:
        if words:
            raise ValueError("ANS payload for a one-symbol alphabet must be empty (corrupt file)")
        return np.zeros(count, dtype=_SYMBOL_DTYPE)
    # Every symbol costs at least -log2(largest probability) bits, so the payload bounds the count.
    weights = _ANS_WEIGHTS[levels]
    cheapest_bits = -math.log2(float(weights.max() / weights.sum()))
    if count * cheapest_bits > 32 * words + 64:
        raise ValueError(f"ANS payload of {words} words cannot hold {count} symbols (corrupt file)")
    return _ans_decode(payload, levels, count)


# --- Huffman -------------------------------------------------------------------------------------


def huffman_code_lengths(counts: np.ndarray, max_length: int = HUFFMAN_MAX_LENGTH) -> np.ndarray:
    """Huffman code length of every symbol (0 for absent ones), at most ``max_length`` bits.

    Deviation from plain Huffman: when the tree is deeper than ``max_length``, the counts are halved
    (keeping every present symbol at least 1) and the tree rebuilt; this costs a fraction of a
    percent on the rare layer where it happens and keeps the length table at 4 bits per symbol.
    """
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(len(counts), dtype=np.int64)
    present = np.flatnonzero(counts)
    if len(present) == 0:
        return lengths
    if len(present) == 1:
        lengths[present] = 1
        return lengths
    if len(present) > 1 << max_length:
        raise ValueError(f"{len(present)} symbols cannot have Huffman codes of at most {max_length} bits")
    weights = counts[present]
    while True:
        depths = _tree_depths(weights.tolist())
        if depths.max() <= max_length:
            lengths[present] = depths
            return lengths
        weights = (weights >> 1) | 1


def _tree_depths(weights: list[int]) -> np.ndarray:
    leaves = len(weights)
    heap = [(weight, node) for node, weight in enumerate(weights)]
    heapq.heapify(heap)
    parent = [0] * (2 * leaves - 1)
    node = leaves
    while len(heap) > 1:
        first_weight, first = heapq.heappop(heap)
        second_weight, second = heapq.heappop(heap)
        parent[first] = parent[second] = node
        heapq.heappush(heap, (first_weight + second_weight, node))
        node += 1
    depth = [0] * (2 * leaves - 1)
    # Parents are created after their children, so walking down from the root fills every depth.
    for child in range(2 * leaves - 3, -1, -1):
        depth[child] = depth[parent[child]] + 1
    return np.array(depth[:leaves], dtype=np.int64)


def _canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical Huffman: symbols sorted by (length, symbol) take consecutive codes."""
    codes = np.zeros(len(lengths), dtype=np.int64)
    code = 0
    previous = 0
    for symbol in np.lexsort((np.arange(len(lengths)), lengths)):
        length = int(lengths[symbol])
        if length == 0:
            continue
        code <<= length - previous
        codes[symbol] = code
        code += 1
        previous = length
    return codes


def _huffman_decode(payload: memoryview, lengths: np.ndarray, count: int) -> np.ndarray:
    present = np.flatnonzero(lengths)
    if len(present) == 0:
        raise ValueError("Huffman length table has no symbols (corrupt file)")
    longest = int(lengths.max())
    total_bits = 8 * len(payload)
    if count * int(lengths[present].min()) > total_bits:
        raise ValueError(f"Huffman payload of {total_bits} bits cannot hold {count} symbols (corrupt file)")
    # Kraft's inequality: a valid prefix code leaves no table slot claimed twice.
    spans = 1 << (longest - lengths[present])
    if int(spans.sum()) > 1 << longest:
        raise ValueError("Huffman length table is not a prefix code (corrupt file)")
    codes = _canonical_codes(lengths)
    order = present[np.argsort(codes[present], kind="stable")]
    # Lookup by the next `longest` bits. An unclaimed slot (no code starts with those bits) gets a
    # step far past any block, which ends the walk below and is then reported.
    invalid = 1 << 62
    table_symbol = np.zeros(1 << longest, dtype=_SYMBOL_DTYPE)
    table_length = np.full(1 << longest, invalid, dtype=np.int64)
    claimed = int(spans.sum())
    table_symbol[:claimed] = np.repeat(order, 1 << (longest - lengths[order]))
    table_length[:claimed] = np.repeat(lengths[order], 1 << (longest - lengths[order]))
    data = np.frombuffer(payload, np.uint8)
    symbols = np.empty(count, dtype=_SYMBOL_DTYPE)
    decoded = position = 0
    # Block by block: the code starting at every bit of the block is looked up at once, then the
    # chain of codes is followed from the block's first bit (see _follow_codes).
    while decoded < count:
        if position >= total_bits:
            raise ValueError(f"Huffman payload ends before its {count} symbols (truncated or corrupt file)")
        size = min(_BLOCK, total_bits - position)
        windows = _bit_windows(data, position, size, longest)
        steps = table_length[windows]
        starts = _follow_codes(steps, count - decoded)
        if int(steps[starts].max()) >= invalid:
            raise ValueError("Huffman payload holds a bit pattern that is no code (corrupt file)")
        symbols[decoded : decoded + len(starts)] = table_symbol[windows[starts]]
        decoded += len(starts)
        position += int(starts[-1] + steps[starts[-1]])
    if position > total_bits:
        raise ValueError(f"Huffman payload ends before its {count} symbols (truncated or corrupt file)")
    return symbols


def _follow_codes(steps: np.ndarray, wanted: int) -> np.ndarray:
    """Start offsets of the first ``wanted`` codes from offset 0, where a code at offset p is
    ``steps[p]`` bits long; stops at the end of ``steps`` (an invalid code's huge step ends it too).

    The chain is sequential; a plain loop over a Python list measured faster here (about 80 ns a
    code) than jump tables, whose gathers touch every bit of the block.
    """
    step = steps.tolist()
    starts: list[int] = []
    append = starts.append
    offset, size = 0, len(step)
    for _ in range(wanted):
        if offset >= size:
            break
        append(offset)
        offset += step[offset]
    return np.array(starts, dtype=np.int64)


def _bit_windows(data: np.ndarray, start: int, count: int, width: int) -> np.ndarray:
    """The ``width`` bits starting at each of bits ``start .. start + count - 1`` (zeros past the end)."""
    first_byte = start // 8
    chunk = data[first_byte : (start + count + width + 7) // 8]
    bits = np.unpackbits(chunk)[start - 8 * first_byte :]
    bits = np.concatenate([bits, np.zeros(max(0, count + width - len(bits)), np.uint8)])
    windows = np.zeros(count, dtype=np.int64)
    for offset in range(width):
        windows = (windows << 1) | bits[offset : offset + count]
    return windows


# --- rANS ----------------------------------------------------------------------------------------


def _ans_levels(counts: np.ndarray) -> np.ndarray:
    """The stored model: 1 + round(-2 log2 p) for present symbols, clipped to the 5-bit range."""
    levels = np.zeros(len(counts), dtype=np.int64)
    present = counts > 0
    probability = counts[present] / counts.sum()
    levels[present] = np.clip(1 + np.rint(-2.0 * np.log2(probability)), 1, _ANS_LEVELS)
    return levels


def _ans_model(levels: np.ndarray):
    import constriction

    if not levels.any():
        raise ValueError("ANS probability table has no symbols (corrupt file)")
    return constriction.stream.model.Categorical(_ANS_WEIGHTS[levels], perfect=False)


def _ans_encode(symbols: np.ndarray, levels: np.ndarray) -> np.ndarray:
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), _ans_model(levels))
    return coder.get_compressed()


def _ans_decode(payload: np.ndarray, levels: np.ndarray, count: int) -> np.ndarray:
    import constriction

    model = _ans_model(levels)
    try:
        coder = constriction.stream.stack.AnsCoder(payload)
        symbols = coder.decode(model, count)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"ANS payload does not decode ({error})") from None
    if not coder.is_empty():
        raise ValueError("ANS payload has data left after its symbols (corrupt file)")
    if int(symbols.min()) < 0 or int(symbols.max()) >= len(levels) or not levels[symbols].all():
        raise ValueError("ANS payload decodes to a symbol its table does not have (corrupt file)")
    return symbols.astype(_SYMBOL_DTYPE)


# --- bit packing ---------------------------------------------------------------------------------


def _fixed_width(alphabet: int) -> int:
    return (alphabet - 1).bit_length()


def _pack_bits(symbols: np.ndarray, code_of: np.ndarray, length_of: np.ndarray) -> bytes:
    """Concatenate ``code_of[s]`` in ``length_of[s]`` bits, most significant first, for each symbol."""
    longest = int(length_of.max()) if len(length_of) else 0
    if longest == 0 or len(symbols) == 0:
        return b""
    shifts = np.arange(longest - 1, -1, -1)
    pieces, carry = [], np.zeros(0, np.uint8)
    for start in range(0, len(symbols), _BLOCK):
        block = symbols[start : start + _BLOCK]
        widths = length_of[block]
        # Left-align every code in a `longest`-bit row, then keep the first `width` bits of each row.
        aligned = code_of[block] << (longest - widths)
        matrix = ((aligned[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
        bits = np.concatenate([carry, matrix[np.arange(longest)[None, :] < widths[:, None]]])
        whole = len(bits) // 8 * 8
        pieces.append(np.packbits(bits[:whole]).tobytes())
        carry = bits[whole:]
    pieces.append(np.packbits(carry).tobytes())
    return b"".join(pieces)


def _pack_fixed(values: np.ndarray, width: int) -> bytes:
    alphabet = int(np.max(values)) + 1 if len(values) else 1
    return _pack_bits(np.asarray(values), np.arange(alphabet, dtype=np.int64), np.full(alphabet, width, dtype=np.int64))


def _unpack_fixed(packed: memoryview | bytes, count: int, width: int) -> np.ndarray:
    """``count`` values of ``width`` bits each, MSB first (the caller has checked the byte count)."""
    values = np.zeros(count, dtype=_SYMBOL_DTYPE)
    if width == 0:
        return values
    data = np.frombuffer(packed, np.uint8)
    weights = (1 << np.arange(width - 1, -1, -1)).astype(np.int32)
    block = _BLOCK // 8 * 8  # a multiple of 8 symbols starts on a byte boundary
    for start in range(0, count, block):
        size = min(block, count - start)
        chunk = data[start * width // 8 : ((start + size) * width + 7) // 8]
        bits = np.unpackbits(chunk)[: size * width].reshape(size, width)
        values[start : start + size] = bits.astype(np.int32) @ weights
    return values
