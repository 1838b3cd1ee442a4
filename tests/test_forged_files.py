"""Hostile .net and .sqz bytes: every forgery loads or fails with ValueError (never another
exception, never a hang), and never allocates more than the file and its declared model justify.

- mutated copies of the real published .net file (bit flips, cuts, lying counts, gaps);
- hostile .sqz files: cuts and flips caught by the CRC; lying fields, forged bytes and hostile
  specs re-sealed with a valid CRC, through both readers (``squeezenet.compress.sqz.decode_sqz`` and
  the NumPy runtime's ``read_compressed``, which calls the same codec, then lays out the network);
- every input that broke a reader while hardening it (issue 7), kept so it stays fixed: each test
  names how the input was found and what it did before the fix.

Memory: inputs are decoded under tracemalloc (numpy reports its buffers to it) with a peak below
``budget``: a small multiple of the file's length, plus a small multiple of the dense float32 size
of the model the file's spec declares (the model a caller builds anyway; the reader caps it at
``MAX_PARAMETERS`` weights), plus the fixed working set of the block-wise decoders. An alarm after
30 s of CPU time catches a hang without timing anything that passes.
"""

from __future__ import annotations

import copy
import json
import signal
import tracemalloc
import zlib
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezenet.compress import sqz as sqz_module
from squeezenet.compress.bytestream import ByteReader, varint
from squeezenet.compress.caffe_net import net_to_model, parse_net, read_net
from squeezenet.compress.quantize import quantize_model, to_sparse_layer
from squeezenet.compress.sqz import decode_sqz, encode_sqz, read_sqz
from squeezenet.models import squeezenet_cifar, weight_layers
from squeezenet.runtime_numpy import read_compressed

WORKING_SET = 16 << 20  # the block decoders' scratch: 2**18 symbols or bits at a few int64 each
HANG_SECONDS = 30


def budget(data: bytes, declared_weights: int) -> int:
    return 4 * len(data) + 4 * (4 * declared_weights) + WORKING_SET


@contextmanager
def hang_alarm():
    """Fails the test when the block uses ``HANG_SECONDS`` of CPU time (a profiling timer: a shared,
    loaded machine slows the wall clock, not the CPU work a hang is made of)."""
    def hung(signum, frame):
        raise AssertionError(f"decoding ran past {HANG_SECONDS} s of CPU time: a hang")

    previous = signal.signal(signal.SIGPROF, hung)
    signal.setitimer(signal.ITIMER_PROF, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def peak_of(parse, data: bytes) -> tuple[int, object]:
    """(peak bytes, result or the ValueError) of ``parse(data)``; any other exception propagates."""
    tracemalloc.start()
    try:
        with hang_alarm():
            try:
                outcome = parse(data)
            except ValueError as error:
                outcome = error
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def declared_weights(data: bytes) -> int:
    """Weights of the model the file's JSON header declares (0 when it declares none we build)."""
    try:
        reader = ByteReader(data, 4, len(data) - 4)
        header = sqz_module._parse_header(reader.take(reader.varint("spec", sqz_module.MAX_SPEC_BYTES), "spec"))
        shapes = sqz_module._layer_shapes(header["spec"])
    except ValueError:
        return 0
    return sum(int(np.prod(shape)) for shape, _ in shapes)


def runtime_numpy_reader(tmp_path):
    path = tmp_path / "mutant.sqz"

    def parse(data: bytes):
        path.write_bytes(data)
        return read_compressed(path)

    return parse


def reseal(body: bytes) -> bytes:
    """Append a correct CRC32, so forged bytes get past the checksum to the parser."""
    return body + zlib.crc32(body).to_bytes(4, "little")


class RecordingReader(ByteReader):
    """A ByteReader that notes where every varint field starts and ends."""

    fields: list[tuple[str, int, int]] = []

    def varint(self, what: str, maximum: int) -> int:
        start = self.offset
        value = super().varint(what, maximum)
        RecordingReader.fields.append((what, start, self.offset))
        return value


def varint_fields(data: bytes, monkeypatch) -> list[tuple[str, int, int]]:
    RecordingReader.fields = []
    monkeypatch.setattr(sqz_module, "ByteReader", RecordingReader)
    decode_sqz(data)
    monkeypatch.undo()
    return list(RecordingReader.fields)


@pytest.fixture(scope="module")
def published_spec(published_layers) -> dict:
    return net_to_model(published_layers).spec.to_dict()


@pytest.fixture(scope="module")
def published_sqz(published_encodings) -> dict[str, bytes]:
    """The real published model re-encoded at 8 bits with each coder (bit-exact to the .net; conftest
    encodes each once a session), and ``tiny-huffman``: a small SqueezeNet in Huffman (the published
    one takes seconds per decode)."""
    files = {coder: published_encodings[coder] for coder in ("fixed", "huffman", "ans")}
    torch.manual_seed(0)
    tiny = squeezenet_cifar(base_e=8, incr_e=8, num_classes=10)
    quantizations = quantize_model(tiny, 5)
    layers = [to_sparse_layer(quantizations[name], module.bias, 63) for name, module in weight_layers(tiny)]
    files["tiny-huffman"] = encode_sqz(tiny.spec.to_dict(), layers, 5, "huffman")[0]
    return files


@pytest.fixture(scope="module")
def field_maps(published_sqz) -> dict[str, list[tuple[str, int, int]]]:
    monkeypatch = pytest.MonkeyPatch()
    try:
        return {coder: varint_fields(data, monkeypatch) for coder, data in published_sqz.items()}
    finally:
        monkeypatch.undo()


@pytest.fixture(scope="module")
def layer_shapes(published_sqz) -> dict[str, list[tuple[int, ...]]]:
    return {coder: [layer.shape for layer in decode_sqz(data)[1]] for coder, data in published_sqz.items()}


def test_valid_published_files_stay_inside_the_budget(published_sqz, published_net):
    """The bound is not vacuous: real files parse within it (the peaks are printed)."""
    for coder, data in published_sqz.items():
        peak, outcome = peak_of(decode_sqz, data)
        assert not isinstance(outcome, ValueError), outcome
        assert peak <= budget(data, declared_weights(data)), (coder, peak)
        print(f"{coder}: {len(data)} bytes, peak {peak} = {peak / budget(data, declared_weights(data)):.2f} of the budget")
    raw = published_net.read_bytes()
    peak, outcome = peak_of(parse_net, raw)
    assert len(outcome) == 26 and peak <= 4 * len(raw) + WORKING_SET


LIES = [0, 1, 2, 255, 4096, 65_535, 1 << 20, (1 << 26) + 1, (1 << 35) - 1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(coder=st.sampled_from(["fixed", "ans", "tiny-huffman"]), pick=st.integers(0, 10**6), lie=st.sampled_from(LIES),
       delta=st.integers(-3, 3))
def test_lying_varint_fields_with_a_valid_crc(published_sqz, field_maps, coder, pick, lie, delta):
    """Any varint field of the real file (spec size, layer count, codebook size, entry counts,
    alphabet sizes, payload sizes) rewritten to a lie, CRC re-sealed: ValueError or valid layers,
    within budget, for both readers."""
    data = published_sqz[coder]
    what, start, end = field_maps[coder][pick % len(field_maps[coder])]
    true_value = ByteReader(data, start).varint(what, 1 << 40)
    value = max(0, lie if pick % 2 else true_value + delta)
    forged = reseal(data[:start] + varint(value) + data[end:-4])
    weights = declared_weights(forged)
    peak, _ = peak_of(decode_sqz, forged)
    assert peak <= budget(forged, weights), (what, value, peak)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), lie=st.sampled_from(LIES), coder=st.sampled_from(["fixed", "ans"]))
def test_lying_fields_reach_the_numpy_runtime_reader_within_budget(published_sqz, field_maps, tmp_path, pick, lie, coder):
    data = published_sqz[coder]
    what, start, end = field_maps[coder][pick % len(field_maps[coder])]
    forged = reseal(data[:start] + varint(lie) + data[end:-4])
    peak, _ = peak_of(runtime_numpy_reader(tmp_path), forged)
    assert peak <= budget(forged, declared_weights(forged)), (what, lie, peak)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(coder=st.sampled_from(["fixed", "ans", "tiny-huffman"]), position=st.integers(4, 10**7),
       chunk=st.binary(min_size=1, max_size=8), cut=st.one_of(st.none(), st.integers(5, 10**7)))
def test_forged_bytes_and_cuts_with_a_valid_crc(published_sqz, layer_shapes, coder, position, chunk, cut):
    """Forged bytes (and cuts), CRC re-sealed: ValueError or layers of the file's own shapes, within
    budget. (Merged: test_sqz.py's forged-byte test on a tiny Huffman file is the tiny-huffman case.)"""
    body = bytearray(published_sqz[coder][:-4])
    position %= len(body)
    body[position : position + len(chunk)] = chunk
    if cut is not None:
        body = body[: cut % len(body)]
    forged = reseal(bytes(body))
    peak, outcome = peak_of(decode_sqz, forged)
    assert peak <= budget(forged, declared_weights(forged))
    if not isinstance(outcome, ValueError):
        assert [layer.shape for layer in outcome[1]] == layer_shapes[coder]


def hostile_header(header_text: str, after: bytes = b"") -> bytes:
    packed = zlib.compress(header_text.encode(), 9)
    return reseal(b"SQZ\x01" + varint(len(packed)) + packed + after)


SPEC_VALUES = st.one_of(st.integers(-2, 3), st.sampled_from([10**6, 10**9, 2**40, 10**30]),
                        st.floats(allow_nan=True), st.none(), st.text(max_size=5), st.lists(st.integers(0, 9), max_size=3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(family=st.sampled_from(["squeezenet", "alexnet"]), key=st.sampled_from(
    ["num_classes", "stem_channels", "stem_kernel", "stem_stride", "input_size", "input_channels", "fires",
     "pool_after", "dropout", "small_input", "conv10_padding", "squeeze", "expand1x1", "expand3x3"]),
    value=SPEC_VALUES)
def test_huge_or_odd_declared_shapes_in_the_spec(published_spec, tmp_path, family, key, value):
    """Spec fields (top level, or every Fire row) set to huge, negative, float, NaN, null or text
    values: ValueError or a model within MAX_PARAMETERS, never a giant allocation."""
    spec = copy.deepcopy(published_spec) if family == "squeezenet" else {
        "family": "alexnet", "num_classes": 1000, "batch_norm": False, "dropout": 0.5, "input_size": 224,
        "input_channels": 3, "small_input": False}
    if key in ("squeeze", "expand1x1", "expand3x3"):
        for row in spec.get("fires", []):
            row[key] = value
    else:
        spec[key] = value
    forged = hostile_header(json.dumps({"spec": spec}), varint(26) + b"\x08\x02\x02")
    for parse in (decode_sqz, runtime_numpy_reader(tmp_path)):
        peak, outcome = peak_of(parse, forged)
        assert isinstance(outcome, ValueError)  # no layer data follows: nothing valid can come out
        assert peak <= budget(forged, declared_weights(forged)), (key, value, peak)


def test_a_dense_layer_of_one_symbol_costs_its_declared_size_not_more(published_layers):
    """The legitimate worst case: a model whose every weight is stored with one-symbol alphabets
    (an ANS payload of zero bytes). Decoding allocates in proportion to the declared model, which
    the reader caps; a few hundred bytes of file cannot ask for more."""
    model = net_to_model(published_layers)
    layers = []
    for layer, (_, module) in zip(published_layers, weight_layers(model)):
        numel = module.weight.numel()
        one = np.zeros(numel, np.uint16)
        codebook = np.array([0.0, 0.5], np.float32)
        layers.append(type(layer)(tuple(module.weight.shape), codebook, one + 1, one, layer.bias))
    data, _ = encode_sqz(model.spec.to_dict(), layers, 1, "ans")
    assert len(data) < 20_000  # 16,663 bytes, almost all of it the float32 biases
    weights = sum(m.weight.numel() for _, m in weight_layers(model))
    peak, outcome = peak_of(decode_sqz, data)
    assert not isinstance(outcome, ValueError) and len(outcome[1]) == 26
    assert peak <= budget(data, weights)
    assert sqz_module.MAX_PARAMETERS == 1 << 26  # the cap that bounds this case for any spec


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=st.integers(0, 25), other=st.integers(0, 25), shift=st.integers(1, 4000), position=st.integers(0, 10**6),
       value=st.integers(0, 255))
def test_net_counts_that_keep_the_file_length(published_net, layer, other, shift, position, value):
    """.net counts moved between two layers so the total length still matches (the size check
    alone passes), plus one forged byte: ValueError or 26 layers, within 4x the file size."""
    data = bytearray(published_net.read_bytes())
    counts = np.frombuffer(bytes(data[:104]), "<u4").astype(np.int64)
    shift *= 2  # n + ceil(n/2) stays additive for even shifts
    if layer != other and counts[other] >= shift:
        counts[layer] += shift
        counts[other] -= shift
        data[:104] = counts.astype("<u4").tobytes()
    data[104 + position % (len(data) - 104)] = value
    peak, outcome = peak_of(parse_net, bytes(data))
    assert peak <= 4 * len(data) + WORKING_SET
    assert isinstance(outcome, ValueError) or len(outcome) == 26


# --- mutated copies of the published .net file ----------------------------------------------------


@pytest.fixture(scope="module")
def original(published_net) -> bytes:
    return published_net.read_bytes()


def load_or_reject(data: bytes, tmp_path) -> None:
    """The mutant builds a model or raises ValueError; the hang alarm catches a reader that spins."""
    path = tmp_path / "mutant.net"
    path.write_bytes(data)
    with hang_alarm():
        try:
            net_to_model(read_net(path))
        except ValueError:
            pass


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


# --- hostile .sqz files: cuts, CRC, lying fields --------------------------------------------------


@pytest.fixture(scope="module")
def valid_file():
    """A small SqueezeNet at 5 bits in Huffman: (model, sparse layers, .sqz bytes)."""
    torch.manual_seed(0)
    model = squeezenet_cifar(base_e=8, incr_e=8, squeeze_ratio=0.25, pct3x3=0.5, num_classes=10).eval()
    quantizations = quantize_model(model, 5)
    layers = [to_sparse_layer(quantizations[name], module.bias, 63) for name, module in weight_layers(model)]
    data, _ = encode_sqz(model.spec.to_dict(), layers, 5, "huffman")
    return model, layers, data


def test_every_truncation_is_a_value_error(valid_file):
    _, _, data = valid_file
    for cut in list(range(64)) + list(range(64, len(data), 97)):
        with pytest.raises(ValueError):
            decode_sqz(data[:cut])


def test_bit_flips_are_caught_by_the_crc(valid_file):
    _, _, data = valid_file
    rng = np.random.default_rng(0)
    for position in rng.integers(4, len(data), size=40):
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(ValueError, match="CRC32|corrupt"):
            decode_sqz(bytes(flipped))


def first_count_offset(model, layers, data):
    """Offset of layer 0's entry count (see docs/FORMAT.md)."""
    header = {"spec": model.spec.to_dict()}
    spec_size = len(zlib.compress(json.dumps(header, separators=(",", ":"), sort_keys=True).encode(), 9))
    flags_at = 4 + len(varint(spec_size)) + spec_size + 1 + 2
    codebook_width = 2 if data[flags_at] & 1 else 4
    bias_width = 2 if data[flags_at] & 4 else 4
    offset = flags_at + 1 + len(varint(len(layers[0].codebook)))
    return offset + codebook_width * (len(layers[0].codebook) - 1) + bias_width * len(layers[0].bias)


def test_lying_counts_with_a_valid_crc_are_rejected(valid_file):
    model, layers, data = valid_file
    offset = first_count_offset(model, layers, data)
    true_count = varint(len(layers[0].codes))
    assert data[offset : offset + len(true_count)] == true_count
    body = data[:-4]
    for lie in (layers[0].numel + 1, 2**33, len(layers[0].codes) + 1):
        forged = reseal(body[:offset] + varint(lie) + body[offset + len(true_count) :])
        with pytest.raises(ValueError):
            decode_sqz(forged)


def test_a_spec_with_batch_norm_is_rejected_by_the_reader(valid_file):
    model, _, data = valid_file
    packed = zlib.compress(json.dumps({"spec": {**model.spec.to_dict(), "batch_norm": True}}).encode())
    with pytest.raises(ValueError, match="BatchNorm"):
        decode_sqz(reseal(b"SQZ\x01" + varint(len(packed)) + packed + varint(26)))


def test_not_a_sqz_file(tmp_path):
    path = tmp_path / "x.sqz"
    path.write_bytes(b"PK\x03\x04 zip, not sqz")
    with pytest.raises(ValueError, match="magic"):
        read_sqz(path)
    with pytest.raises(FileNotFoundError):
        read_sqz(tmp_path / "missing.sqz")


# --- inputs that broke a reader while hardening it (issue 7) ----------------------------------------


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
def published(published_spec, published_layers):
    return published_spec, published_layers


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


def test_bit_width_40_does_not_allocate_a_64_gib_codebook(readers, published, published_encodings):
    """Probe (hand-made, then hypothesis): the NumPy runtime did not check the bit width, so width
    40 allowed a codebook size of 2**34 + 5, and np.zeros asked for 64 GiB (MemoryError)."""
    spec, layers = published
    data = published_encodings["fixed"]
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


def test_a_spec_for_a_giant_model_is_refused_without_allocating(readers, published):
    """10**7 stem channels and classes declare a model far above ``MAX_PARAMETERS``: both readers
    refuse it from the header alone, without allocating it. (Merged: test_sqz.py checked decode_sqz
    alone, without measuring the peak.)"""
    spec = {**published[0], "stem_channels": 10**7, "num_classes": 10**7}
    forged = with_header(zlib.compress(json.dumps({"spec": spec}).encode()))
    for name, read in readers.items():
        assert refusal_peak(read, forged, "more than") < 16 << 20, name
