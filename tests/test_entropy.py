"""Entropy coders: exact round trips, the Huffman rule on hand-checked counts, hostile streams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.compress.bytestream import ByteReader, varint
from squeezenet.compress.entropy import CODERS, decode_symbols, encode_symbols, huffman_code_lengths


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
    with pytest.raises(ValueError, match="alphabet size"):  # alphabet above the caller's bound
        decode_symbols(ByteReader(data), coder, len(symbols), max_alphabet=10)
    with pytest.raises(ValueError):
        decode_symbols(ByteReader(varint(2**34) + data), coder, len(symbols))


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(min_size=0, max_size=300), coder=st.sampled_from(CODERS), count=st.integers(1, 5000))
def test_random_bytes_decode_to_bounded_symbols_or_value_error(garbage, coder, count):
    try:
        symbols = decode_symbols(ByteReader(garbage), coder, count, max_alphabet=64)
    except ValueError:
        return
    assert len(symbols) == count and (0 <= symbols).all() and (symbols < 64).all()
