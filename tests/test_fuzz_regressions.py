"""Every input that broke a reader while hardening it (issue 7), kept so it stays fixed.

Each test names how the input was found and what it did before the fix. The readers are
``squeezenet.compress.sqz.decode_sqz`` and the NumPy runtime's ``read_compressed`` (which calls the same codec, then lays out the network).
"""

from __future__ import annotations

import json
import tracemalloc
import zlib

import pytest

from squeezenet.compress.bytestream import ByteReader, varint
from squeezenet.compress.caffe_net import net_to_model, read_net
from squeezenet.compress.sqz import decode_sqz, encode_sqz
from squeezenet.runtime_numpy import read_compressed


def reseal(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def with_header(packed_json: bytes, after: bytes = varint(26)) -> bytes:
    return reseal(b"SQZ\x01" + varint(len(packed_json)) + packed_json + after)


def refusal_peak(read, data: bytes, match: str) -> int:
    """Peak traced bytes while ``read(data)`` raises the ValueError matching ``match``."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            read(data)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture()
def readers(tmp_path):
    path = tmp_path / "input.sqz"

    def runtime(data: bytes):
        path.write_bytes(data)
        return read_compressed(path)

    return {"decode_sqz": decode_sqz, "runtime_numpy": runtime}


@pytest.fixture(scope="module")
def published(published_net):
    layers = read_net(published_net)
    return net_to_model(layers).spec.to_dict(), layers


def test_deeply_nested_json_header(readers):
    """Probe (hand-made): 10**5 nested brackets in the zlib JSON header made json.loads raise
    RecursionError in both readers instead of ValueError."""
    for text in ('{"spec":' + "[" * 100_000 + "]" * 100_000 + "}",
                 '{"spec":{"family":"squeezenet","fires":' + "[" * 100_000 + "]" * 100_000 + "}}"):
        forged = with_header(zlib.compress(text.encode(), 9))
        for name, read in readers.items():
            with pytest.raises(ValueError, match="not valid JSON|unreadable architecture spec"):
                read(forged)


def test_zlib_bomb_json_header_is_not_inflated(readers):
    """Probe (hand-made): a 194 KB file whose JSON header inflates to 200 MB. The NumPy runtime
    inflated all of it (peak 449 MB); both readers now stop at 1 MiB."""
    compressor = zlib.compressobj(9)
    pieces = [compressor.compress(b'{"spec":{"family":"squeezenet"},"classes":["')]
    block = b" " * (1 << 20)
    pieces += [compressor.compress(block) for _ in range(200)]
    pieces += [compressor.compress(b'"]}'), compressor.flush()]
    forged = with_header(b"".join(pieces))
    assert len(forged) < 250_000
    for name, read in readers.items():
        assert refusal_peak(read, forged, "too long|longer than 1 MiB") < 16 << 20, name


def layer0_header_offset(data: bytes) -> int:
    """Offset of layer 0's bit-width byte (docs/FORMAT.md: magic, version, spec, layer count)."""
    reader = ByteReader(data, 4)
    reader.take(reader.varint("spec size", 1 << 30), "spec")
    reader.varint("layer count", 1 << 30)
    return reader.offset


def test_bit_width_40_does_not_allocate_a_64_gib_codebook(readers, published):
    """Probe (hand-made, then hypothesis): the NumPy runtime did not check the bit width, so width
    40 allowed a codebook size of 2**34 + 5, and np.zeros asked for 64 GiB (MemoryError)."""
    spec, layers = published
    data = encode_sqz(spec, layers, 8, "fixed")[0]
    at = layer0_header_offset(data)
    assert data[at] == 8
    body = data[:-4]
    size_end = at + 3 + len(varint(len(layers[0].codebook)))
    forged = reseal(body[:at] + bytes([40, 0, 3]) + varint((1 << 34) + 5) + body[size_end:])
    for name, read in readers.items():
        assert refusal_peak(read, forged, "bit width") < 16 << 20, name


@pytest.mark.parametrize("key, value, error_before", [
    ("stem_stride", 0, "ZeroDivisionError"),
    ("stem_channels", None, "TypeError"),
    ("stem_channels", "", "numpy UFuncNoLoopError"),
])
def test_odd_specs_reach_the_numpy_runtime_as_value_errors(readers, published, key, value, error_before):
    """Found by tests/test_hardening_allocation.py::test_huge_or_odd_declared_shapes_in_the_spec:
    the NumPy runtime's graph builder took these values and failed with ``error_before``."""
    spec = {**published[0], key: value}
    forged = with_header(zlib.compress(json.dumps({"spec": spec}).encode()), varint(26) + b"\x08\x02\x02")
    for name, read in readers.items():
        with pytest.raises(ValueError):
            read(forged)


def test_a_huge_declared_layer_is_refused_before_its_zero_cost_symbols(readers, published):
    """Probe (hand-made): 10**6 input channels make conv1 a 4.7e9-weight layer; its entry count
    2**32 with one-symbol ANS streams (zero payload bytes) made the NumPy runtime, which had no
    cap on declared weights, allocate 2 x 8 GiB. Both readers now refuse more than 2**26 weights."""
    spec = {**published[0], "input_channels": 10**6}
    one_symbol_stream = varint(1) + bytes([0b00001000]) + varint(0)  # alphabet 1, ANS level 1, no payload
    layer0 = bytes([8, 2, 2 | 4]) + varint(1) + b"\0\0" * 96 + varint(2**32) + one_symbol_stream * 2
    forged = with_header(zlib.compress(json.dumps({"spec": spec}).encode()), varint(26) + layer0)
    for name, read in readers.items():
        assert refusal_peak(read, forged, "more than") < 16 << 20, name
