"""Hostile .sqz and .net bytes never allocate more than the file and its declared model justify.

Every input is decoded under tracemalloc (numpy reports its buffers to it) and must either parse or
raise ValueError, with a peak below ``budget``: a small multiple of the file's length, plus a small
multiple of the dense float32 size of the model the file's spec declares (the model a caller builds
anyway; the reader caps it at ``MAX_PARAMETERS`` weights), plus the fixed working set of the
block-wise decoders. A 30 s alarm catches a hang without timing anything that passes.
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
from squeezenet.compress.sqz import decode_sqz, encode_sqz
from squeezenet.models import squeezenet_cifar, weight_layers
from squeezenet.runtime_numpy import read_compressed

WORKING_SET = 16 << 20  # the block decoders' scratch: 2**18 symbols or bits at a few int64 each
HANG_SECONDS = 30


def budget(data: bytes, declared_weights: int) -> int:
    return 4 * len(data) + 4 * (4 * declared_weights) + WORKING_SET


@contextmanager
def hang_alarm():
    def hung(signum, frame):
        raise AssertionError(f"decoding ran past {HANG_SECONDS} s: a hang")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


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
def published_layers(published_net):
    return read_net(published_net)


@pytest.fixture(scope="module")
def published_spec(published_layers) -> dict:
    return net_to_model(published_layers).spec.to_dict()


@pytest.fixture(scope="module")
def published_sqz(published_layers, published_spec) -> dict[str, bytes]:
    """The real published model re-encoded at 8 bits with each coder (bit-exact to the .net), and
    ``tiny-huffman``: a small SqueezeNet in Huffman (the published one takes seconds per decode)."""
    files = {coder: encode_sqz(published_spec, published_layers, 8, coder)[0] for coder in ("fixed", "huffman", "ans")}
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


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(coder=st.sampled_from(["fixed", "ans"]), position=st.integers(4, 10**7), chunk=st.binary(min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(5, 10**7)))
def test_forged_bytes_and_cuts_with_a_valid_crc(published_sqz, coder, position, chunk, cut):
    body = bytearray(published_sqz[coder][:-4])
    position %= len(body)
    body[position : position + len(chunk)] = chunk
    if cut is not None:
        body = body[: cut % len(body)]
    forged = reseal(bytes(body))
    peak, _ = peak_of(decode_sqz, forged)
    assert peak <= budget(forged, declared_weights(forged))


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
