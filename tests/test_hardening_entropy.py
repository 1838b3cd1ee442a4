"""The entropy decoders fuzzed directly: real streams with lying counts, lying alphabets, forged and
cut bytes. Each gives exactly ``count`` in-alphabet symbols or a ValueError, within a memory bound.

Bounds: fixed-width and Huffman symbols cost at least one bit, so their output (and every scratch
array) is bounded by the stream's length whatever count the caller asks for. ANS symbols may cost a
fraction of a bit, and a one-symbol alphabet costs none in any coder, so there the bound grows with
the caller's count: ``decode_symbols`` trusts its caller for that, and the .sqz readers pass at most
the layer's declared size (at most ``MAX_PARAMETERS`` = 2**26 weights per model), the largest count
drawn here.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.compress.bytestream import ByteReader, varint
from squeezenet.compress.entropy import CODERS, decode_symbols, encode_symbols

WORKING_SET = 16 << 20


def bound(coder: str, stream: bytes, count: int) -> int:
    try:
        one_symbol = ByteReader(stream).varint("alphabet", 1 << 40) == 1
    except ValueError:
        one_symbol = False
    per_count = 8 * count if coder == "ans" or one_symbol else 0
    return 64 * len(stream) + per_count + WORKING_SET


def decode_within_bound(stream: bytes, coder: str, count: int, alphabet: int):
    tracemalloc.start()
    try:
        try:
            symbols = decode_symbols(ByteReader(stream), coder, count, alphabet)
        except ValueError:
            symbols = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= bound(coder, stream, count), (coder, count, len(stream), peak)
    if symbols is not None:
        assert len(symbols) == count and int(symbols.max(initial=0)) < alphabet
    return symbols


@st.composite
def real_streams(draw):
    coder = draw(st.sampled_from(CODERS))
    alphabet = draw(st.integers(1, 300))
    count = draw(st.integers(1, 2000))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = rng.exponential(size=alphabet) ** draw(st.sampled_from([1, 4, 12]))
    symbols = rng.choice(alphabet, size=count, p=weights / weights.sum())
    return coder, symbols, encode_symbols(symbols, coder)


COUNT_LIES = st.one_of(st.integers(1, 5000), st.sampled_from([2**20, 2**24, 2**26]))


@settings(max_examples=60, deadline=None)
@given(stream=real_streams(), count=COUNT_LIES, alphabet=st.sampled_from([1, 2, 16, 300, 4096]))
def test_lying_count_and_alphabet_bound(stream, count, alphabet):
    coder, _, data = stream
    decode_within_bound(data, coder, count, alphabet)


@settings(max_examples=60, deadline=None)
@given(stream=real_streams(), position=st.integers(0, 10**6), chunk=st.binary(min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 10**6)), lie=st.booleans())
def test_forged_and_cut_streams(stream, position, chunk, cut, lie):
    coder, symbols, data = stream
    forged = bytearray(data)
    forged[position % len(forged) : position % len(forged) + len(chunk)] = chunk
    if cut is not None:
        forged = forged[: cut % (len(forged) + 1)]
    count = len(symbols) * (1000 if lie else 1)
    decode_within_bound(bytes(forged), coder, count, 4096)


@settings(max_examples=40, deadline=None)
@given(coder=st.sampled_from(CODERS), alphabet=st.integers(1, 4096), table=st.binary(max_size=64),
       payload_words=st.sampled_from([0, 1, 2, 1 << 20, 2**34]), payload=st.binary(max_size=64),
       count=COUNT_LIES)
def test_hand_built_headers_with_lying_sizes(coder, alphabet, table, payload_words, payload, count):
    """Alphabet, table and payload-size fields assembled from scratch: a varint payload size far
    beyond the bytes present, tables of zeros, alphabets up to 4096."""
    stream = varint(alphabet) + table + varint(payload_words) + payload
    decode_within_bound(stream, coder, count, 4096)


def test_huffman_and_fixed_refuse_a_count_their_payload_cannot_hold():
    """The bound above is strict for them: asking 2**26 symbols of a 300-byte stream allocates
    nothing of that size (it would be 128 MiB of uint16)."""
    symbols = np.random.default_rng(3).integers(0, 40, size=500)
    for coder in ("fixed", "huffman"):
        data = encode_symbols(symbols, coder)
        assert decode_within_bound(data, coder, 2**26, 4096) is None
