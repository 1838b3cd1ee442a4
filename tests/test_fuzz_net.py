"""Mutated copies of the real published .net file: each loads or fails with ValueError, quickly."""

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezenet.compress.caffe_net import net_to_model, read_net



@pytest.fixture(scope="module")
def original(published_net) -> bytes:
    return published_net.read_bytes()


def load_or_reject(data: bytes, tmp_path) -> None:
    path = tmp_path / "mutant.net"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        net_to_model(read_net(path))
    except ValueError:
        pass
    assert time.perf_counter() - start < 5, "a mutated file must not make the reader spin"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 675_762), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips(original, tmp_path, flips):
    data = bytearray(original)
    for offset, bit in flips:
        data[offset] ^= 1 << bit
    load_or_reject(bytes(data), tmp_path)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 675_762))
def test_truncation(original, tmp_path, size):
    path = tmp_path / "cut.net"
    path.write_bytes(original[:size])
    with pytest.raises(ValueError, match="truncated"):
        read_net(path)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=st.integers(0, 25), count=st.sampled_from([0, 1, 2**16, 2**31, 2**32 - 1]))
def test_lying_counts(original, tmp_path, layer, count):
    data = bytearray(original)
    data[4 * layer : 4 * layer + 4] = count.to_bytes(4, "little")
    load_or_reject(bytes(data), tmp_path)


def test_gap_past_the_end_is_rejected(original, tmp_path):
    # Make every gap of conv1 the maximum: the stored entries then run past the layer's end.
    counts = [int.from_bytes(original[4 * i : 4 * i + 4], "little") for i in range(26)]
    start = 4 * 26 + 4 * 256 + 4 * 96 + counts[0]
    data = bytearray(original)
    data[start : start + (counts[0] + 1) // 2] = b"\xff" * ((counts[0] + 1) // 2)
    path = tmp_path / "gaps.net"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="past"):
        read_net(path)
