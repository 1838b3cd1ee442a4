"""Entropy coders: exact round trips, the Huffman rule on hand-checked counts, hostile streams.

Hostile streams (real streams with lying counts, lying alphabets, forged and cut bytes, garbage)
give exactly ``count`` in-alphabet symbols or a ValueError, within a memory bound.

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
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.compress.bytestream import ByteReader, varint
from squeezenet.compress.entropy import (
    CODERS,
    decode_symbols,
    encode_symbols,
    huffman_code_lengths,
)


@st.composite
def symbol_arrays(draw):
    """Skewed small-integer arrays like codes and gaps: a random alphabet and a random distribution."""
    alphabet = draw(st.integers(1, 300))
    count = draw(st.integers(0, 3000))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    weights = rng.exponential(size=alphabet) ** draw(st.sampled_from([1, 3, 8]))
    return rng.choice(alphabet, size=count, p=weights / weights.sum())


@settings(max_examples=40, deadline=None)
@given(symbols=symbol_arrays(), coder=st.sampled_from(CODERS))
def test_every_coder_round_trips_exactly_and_consumes_its_stream(symbols, coder):
    trailer = b"\xabNEXT"
    data = encode_symbols(symbols, coder) + trailer
    reader = ByteReader(data)
    decoded = decode_symbols(reader, coder, len(symbols))
    assert decoded.dtype == np.uint16  # every alphabet is below 4096: two bytes per decoded symbol
    np.testing.assert_array_equal(decoded, symbols)
    assert bytes(reader.take(reader.remaining, "rest")) == trailer


def test_huffman_lengths_on_a_hand_checked_case():
    # counts 5, 2, 1, 1: merge 1+1 -> 2, then 2+2 -> 4, then 4+5: depths 1, 2, 3, 3.
    np.testing.assert_array_equal(huffman_code_lengths(np.array([5, 2, 1, 1, 0])), [1, 2, 3, 3, 0])
    np.testing.assert_array_equal(huffman_code_lengths(np.array([0, 7, 0])), [0, 1, 0])


def test_huffman_lengths_are_limited_to_15_bits_and_stay_a_prefix_code():
    fibonacci = [1, 1]
    while len(fibonacci) < 24:
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    assert huffman_code_lengths(np.array(fibonacci), max_length=64).max() == 23  # unlimited depth
    lengths = huffman_code_lengths(np.array(fibonacci))
    assert 0 < lengths.max() <= 15
    assert np.sum(2.0 ** -lengths) <= 1.0
    symbols = np.repeat(np.arange(24), fibonacci)
    np.testing.assert_array_equal(decode_symbols(ByteReader(encode_symbols(symbols, "huffman")), "huffman", len(symbols)), symbols)


def test_entropy_coders_beat_fixed_width_and_ans_beats_whole_bits():
    rng = np.random.default_rng(0)
    peaked = (rng.random(20000) < 0.03).astype(np.int64)  # 0.19 bits of entropy per symbol
    sizes = {coder: len(encode_symbols(peaked, coder)) for coder in CODERS}
    assert sizes["fixed"] == len(varint(2)) + 20000 // 8
    assert sizes["huffman"] >= 20000 // 8  # Huffman cannot go below one bit per symbol
    assert sizes["ans"] < 0.25 * sizes["huffman"]


@pytest.mark.parametrize("coder", CODERS)
def test_truncated_streams_raise_value_error(coder):
    symbols = np.random.default_rng(1).integers(0, 40, size=500)
    data = encode_symbols(symbols, coder)
    for cut in range(0, len(data), max(1, len(data) // 25)):
        with pytest.raises(ValueError):
            decode_symbols(ByteReader(data[:cut]), coder, len(symbols))


@pytest.mark.parametrize("coder", CODERS)
def test_lying_counts_and_alphabets_raise_before_allocating(coder):
    symbols = np.random.default_rng(2).integers(0, 40, size=500)
    data = encode_symbols(symbols, coder)
    with pytest.raises(ValueError):  # a count far beyond what the payload can hold
        decode_symbols(ByteReader(data), coder, 10**9)
    if coder != "ans":
        # The memory bound is strict for fixed and Huffman (a symbol costs at least one bit): asking
        # 2**26 symbols of this stream allocates nothing of that size (it would be 128 MiB of uint16).
        assert decode_within_bound(data, coder, 2**26, 4096) is None
    with pytest.raises(ValueError, match="alphabet size"):  # alphabet above the caller's bound
        decode_symbols(ByteReader(data), coder, len(symbols), max_alphabet=10)
    with pytest.raises(ValueError):
        decode_symbols(ByteReader(varint(2**34) + data), coder, len(symbols))


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(min_size=0, max_size=300), coder=st.sampled_from(CODERS), count=st.integers(1, 5000))
def test_random_bytes_decode_to_bounded_symbols_or_value_error(garbage, coder, count):
    symbols = decode_within_bound(garbage, coder, count, 64)
    assert symbols is None or (0 <= symbols).all()


# --- hostile streams: bounded output and memory ------------------------------------------------

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
