"""The ``.sqz`` file: a Deep Compression model with its architecture, in one checked file.

Layout (specified byte by byte in docs/FORMAT.md): ``b"SQZ"``, a version byte, a zlib-compressed JSON
header holding the architecture spec (``model.spec.to_dict()``) and, when known, the class names and
input preprocessing of the model, then per weight layer in network order
(``squeezenet.models.weight_layers``) the bit width, coder, codebook, bias, entry count and the
entropy-coded codes and gaps of its sparse form (``SparseLayer``), and a CRC32 of all that.

Reading checks the CRC, then every declared size against the bytes that remain and against the
shapes the spec implies, before anything is allocated from it: a truncated, bit-flipped or lying
file gives one ValueError sentence.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np

from squeezenet.architecture import weight_shapes
from squeezenet.compress.bytestream import ByteReader, varint
from squeezenet.compress.entropy import CODERS, MAX_ALPHABET, decode_symbols, encode_symbols
from squeezenet.compress.sparse import SparseLayer
from squeezenet.safe_io import atomic_write_bytes

__all__ = ["MAGIC", "VERSION", "write_sqz", "encode_sqz", "read_sqz", "decode_sqz", "read_sqz_model", "sqz_breakdown"]

MAGIC = b"SQZ"
VERSION = 1
MAX_BITS = 12
MAX_SPEC_BYTES = 1 << 20  # inflated JSON header: room for thousands of class names
MAX_PARAMETERS = 1 << 26  # 256 MiB of float32: room for AlexNet (61M weights), far below gigabytes
MAX_FIRES = 256
_FLAG_CODEBOOK_FLOAT16 = 1
_FLAG_BIAS = 2
_FLAG_BIAS_FLOAT16 = 4
BREAKDOWN_KEYS = ("header", "spec", "codebooks", "biases", "codes", "indices")


def write_sqz(path: str | os.PathLike, *layers_and_settings, **metadata) -> dict:
    """``encode_sqz(*layers_and_settings, **metadata)`` written atomically to ``path``; returns the
    breakdown. The parameters are encode_sqz's, not repeated here so that they cannot drift apart."""
    data, breakdown = encode_sqz(*layers_and_settings, **metadata)
    atomic_write_bytes(path, data)
    return breakdown


def encode_sqz(
    model_spec: dict,
    layers: list[SparseLayer],
    bits: list[int] | int,
    coder: str | list[str] = "ans",
    *,
    classes: list[str] | None = None,
    preprocess: str | None = None,
) -> tuple[bytes, dict]:
    """The bytes of a .sqz file holding ``layers`` (one per weight layer of ``model_spec``, network
    order), and their breakdown; `write_sqz` writes them to a file.

    ``bits`` bounds each codebook (at most 2**bits entries, entry 0 being 0.0); ``coder`` is one of
    ``fixed``, ``huffman``, ``ans`` for all layers or per layer. Codebooks and biases are stored as
    float16 when that is exact, float32 otherwise, so the file always decodes to the same weights.
    ``classes`` (names) and ``preprocess`` (input preset) travel with the model as in a checkpoint.
    The breakdown gives the exact bytes per component (``header``, ``spec``, ``codebooks``,
    ``biases``, ``codes``, ``indices``) and ``total``.
    """
    if model_spec.get("batch_norm"):
        raise ValueError("fold BatchNorm into the convolutions first (squeezenet.models.fold_batch_norm)")
    shapes = _layer_shapes(model_spec)
    count = len(shapes)
    if len(layers) != count:
        raise ValueError(f"the architecture has {count} weight layers but {len(layers)} were given")
    bits = [int(bits)] * count if isinstance(bits, (int, np.integer)) else [int(width) for width in bits]
    coders = [coder] * count if isinstance(coder, str) else list(coder)
    if len(bits) != count or len(coders) != count:
        raise ValueError(f"need one bit width and one coder per layer ({count})")
    header_json: dict = {"spec": model_spec}
    if classes is not None:
        header_json["classes"] = [str(name) for name in classes]
    if preprocess is not None:
        header_json["preprocess"] = str(preprocess)
    spec_bytes = zlib.compress(json.dumps(header_json, separators=(",", ":"), sort_keys=True).encode(), 9)
    if len(spec_bytes) > MAX_SPEC_BYTES:
        raise ValueError(f"the JSON header takes {len(spec_bytes)} bytes, more than {MAX_SPEC_BYTES}")
    header = bytearray(MAGIC + bytes([VERSION]) + varint(len(spec_bytes)))
    breakdown = dict.fromkeys(BREAKDOWN_KEYS, 0)
    breakdown["spec"] = len(spec_bytes)
    parts = [spec_bytes]
    layer_header = varint(count)
    breakdown["header"] += len(header) + len(layer_header)
    parts.append(layer_header)
    for index, (layer, (shape, has_bias), width, name) in enumerate(zip(layers, shapes, bits, coders)):
        _check_layer(index, layer, shape, has_bias, width, name)
        codebook = np.asarray(layer.codebook, np.float32)
        codebook_bytes, codebook_half = _floats(codebook[1:])
        bias_bytes, bias_half = _floats(np.asarray(layer.bias, np.float32)) if has_bias else (b"", False)
        flags = _FLAG_CODEBOOK_FLOAT16 * codebook_half | _FLAG_BIAS * has_bias | _FLAG_BIAS_FLOAT16 * bias_half
        fields = bytes([width, CODERS.index(name), flags]) + varint(len(codebook))
        entries = varint(len(layer.codes))
        codes = encode_symbols(layer.codes, name)
        gaps = encode_symbols(layer.gaps, name)
        parts += [fields, codebook_bytes, bias_bytes, entries, codes, gaps]
        breakdown["header"] += len(fields) + len(entries)
        breakdown["codebooks"] += len(codebook_bytes)
        breakdown["biases"] += len(bias_bytes)
        breakdown["codes"] += len(codes)
        breakdown["indices"] += len(gaps)
    body = bytes(header) + b"".join(parts)
    data = body + zlib.crc32(body).to_bytes(4, "little")
    breakdown["header"] += 4
    breakdown["total"] = len(data)
    assert sum(breakdown[key] for key in BREAKDOWN_KEYS) == len(data), "breakdown does not add up"
    return data, breakdown


def read_sqz(path: str | os.PathLike) -> tuple[dict, list[SparseLayer], dict]:
    """(spec, layers, metadata) of a .sqz file; metadata has ``version``, ``bits``, ``coders``,
    ``breakdown`` and, when the file has them, ``classes`` and ``preprocess``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f".sqz file not found: {path}")
    try:
        return decode_sqz(path.read_bytes())
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def decode_sqz(data: bytes) -> tuple[dict, list[SparseLayer], dict]:
    """Parse the bytes of a .sqz file (see ``read_sqz``)."""
    if len(data) < len(MAGIC) + 5 or not data.startswith(MAGIC):
        raise ValueError("not a .sqz file (no SQZ magic)")
    if data[3] != VERSION:
        raise ValueError(f"unsupported .sqz version {data[3]} (this reader knows version {VERSION})")
    stored_crc = int.from_bytes(data[-4:], "little")
    if zlib.crc32(memoryview(data)[:-4]) != stored_crc:
        raise ValueError("CRC32 mismatch: the .sqz file is corrupt or truncated")
    reader = ByteReader(data, 4, len(data) - 4)
    breakdown = dict.fromkeys(BREAKDOWN_KEYS, 0)
    mark = reader.offset
    spec_size = reader.varint("spec size", MAX_SPEC_BYTES)
    breakdown["header"] += 4 + reader.offset - mark
    header_json = _parse_header(reader.take(spec_size, "architecture spec"))
    spec = header_json["spec"]
    breakdown["spec"] = spec_size
    shapes = _layer_shapes(spec)
    mark = reader.offset
    count = reader.varint("layer count", len(shapes))
    if count != len(shapes):
        raise ValueError(f"file holds {count} layers but its architecture has {len(shapes)}")
    breakdown["header"] += reader.offset - mark
    layers, bits, coders = [], [], []
    for index, (shape, has_bias) in enumerate(shapes):
        numel = int(np.prod(shape))
        mark = reader.offset
        width, coder_id, flags = reader.u8("bit width"), reader.u8("coder"), reader.u8("flags")
        if not 1 <= width <= MAX_BITS or coder_id >= len(CODERS) or flags >= 8:
            raise ValueError(f"layer {index}: bad bit width {width}, coder {coder_id} or flags {flags}")
        if bool(flags & _FLAG_BIAS) != has_bias:
            raise ValueError(f"layer {index}: bias presence disagrees with the architecture")
        size = reader.varint("codebook size", 1 << width)
        if size < 1:
            raise ValueError(f"layer {index}: empty codebook")
        breakdown["header"] += reader.offset - mark
        codebook = np.zeros(size, np.float32)
        mark = reader.offset
        codebook[1:] = _read_floats(reader, size - 1, flags & _FLAG_CODEBOOK_FLOAT16, "codebook")
        breakdown["codebooks"] += reader.offset - mark
        mark = reader.offset
        bias = _read_floats(reader, shape[0], flags & _FLAG_BIAS_FLOAT16, "bias") if has_bias else np.zeros(0, np.float32)
        breakdown["biases"] += reader.offset - mark
        mark = reader.offset
        entries = reader.varint("entry count", numel)
        breakdown["header"] += reader.offset - mark
        coder = CODERS[coder_id]
        mark = reader.offset
        codes = decode_symbols(reader, coder, entries, size)
        breakdown["codes"] += reader.offset - mark
        mark = reader.offset
        gaps = decode_symbols(reader, coder, entries, min(numel, MAX_ALPHABET))
        breakdown["indices"] += reader.offset - mark
        layer = SparseLayer(tuple(shape), codebook, codes, gaps, bias)
        if entries and int(layer.positions()[-1]) >= numel:
            raise ValueError(f"layer {index}: relative indices run past its {numel} weights")
        layers.append(layer)
        bits.append(width)
        coders.append(coder)
    if reader.remaining:
        raise ValueError(f"{reader.remaining} unexpected bytes after the last layer")
    breakdown["header"] += 4
    breakdown["total"] = len(data)
    metadata = {"version": VERSION, "bits": bits, "coders": coders, "breakdown": breakdown}
    metadata.update({key: header_json[key] for key in ("classes", "preprocess") if key in header_json})
    return spec, layers, metadata


def read_sqz_model(path: str | os.PathLike):
    """The runnable torch model (eval mode) stored in a .sqz file (imports torch on first use)."""
    from squeezenet.models.from_layers import model_from_layers

    spec, layers, metadata = read_sqz(path)
    return model_from_layers(spec, layers, classes=metadata.get("classes"), preprocess=metadata.get("preprocess"))


def sqz_breakdown(path: str | os.PathLike) -> dict:
    """Exact bytes per component of a .sqz file: header, spec, codebooks, biases, codes, indices, total."""
    return read_sqz(path)[2]["breakdown"]


def _layer_shapes(spec: dict) -> list[tuple[tuple[int, ...], bool]]:
    """(weight shape, has bias) per weight layer of the architecture (``squeezenet.architecture``)."""
    # Listing the layers takes time per Fire row: a hostile spec with thousands of them is refused first.
    fires = spec.get("fires", ())
    if isinstance(fires, (list, tuple, dict, str)) and len(fires) > MAX_FIRES:
        raise ValueError(f"architecture has more than {MAX_FIRES} Fire modules")
    if spec.get("batch_norm"):
        raise ValueError("architecture has BatchNorm layers; a .sqz file stores folded models only "
                         "(fold BatchNorm into the convolutions first: squeezenet.models.fold_batch_norm)")
    try:
        shapes = weight_shapes(spec)
    except ValueError as error:
        raise ValueError(f"architecture spec does not describe a model: {error}") from None
    except (TypeError, KeyError, OverflowError, AttributeError, RecursionError) as error:
        raise ValueError(f"architecture spec does not describe a model ({type(error).__name__})") from None
    parameters = sum(int(np.prod(shape)) for shape, _ in shapes)
    if parameters > MAX_PARAMETERS:
        raise ValueError(f"architecture has {parameters} weights, more than the {MAX_PARAMETERS} this reader accepts")
    return shapes


def _parse_header(raw: memoryview) -> dict:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(raw, MAX_SPEC_BYTES)
    except zlib.error:
        raise ValueError("architecture spec is not valid zlib data") from None
    if not inflater.eof or inflater.unconsumed_tail:
        raise ValueError("architecture spec is too long or incomplete")
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a few KB of zlib can nest 10**5 brackets
        raise ValueError("architecture spec is not valid JSON") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("spec"), dict):
        raise ValueError("JSON header holds no architecture spec")
    classes = spec.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
        raise ValueError("JSON header: classes must be a list of names")
    if not isinstance(spec.get("preprocess", ""), str):
        raise ValueError("JSON header: preprocess must be a name")
    return spec


def _check_layer(index: int, layer: SparseLayer, shape: tuple, has_bias: bool, width: int, coder: str) -> None:
    if tuple(layer.shape) != tuple(shape):
        raise ValueError(f"layer {index}: shape {tuple(layer.shape)} but the architecture has {tuple(shape)}")
    if not 1 <= width <= MAX_BITS:
        raise ValueError(f"layer {index}: bit width {width} outside 1..{MAX_BITS}")
    if coder not in CODERS:
        raise ValueError(f"unknown coder {coder!r}; choose from {', '.join(CODERS)}")
    size = len(layer.codebook)
    if not 1 <= size <= 1 << width or layer.codebook[0] != 0.0:
        raise ValueError(f"layer {index}: a {width}-bit layer needs 1..{1 << width} codebook entries with entry 0 = 0.0")
    if has_bias and np.asarray(layer.bias).shape != (shape[0],):
        raise ValueError(f"layer {index}: bias of shape {np.asarray(layer.bias).shape}, expected ({shape[0]},)")
    if len(layer.codes) != len(layer.gaps):
        raise ValueError(f"layer {index}: {len(layer.codes)} codes but {len(layer.gaps)} gaps")
    if len(layer.codes):
        if int(np.min(layer.codes)) < 0 or int(np.max(layer.codes)) >= size:
            raise ValueError(f"layer {index}: codes outside its codebook of {size}")
        if int(np.min(layer.gaps)) < 0 or int(np.max(layer.gaps)) >= MAX_ALPHABET:
            raise ValueError(f"layer {index}: gaps must lie in [0, {MAX_ALPHABET})")
        if int(layer.positions()[-1]) >= layer.numel:
            raise ValueError(f"layer {index}: relative indices run past its {layer.numel} weights")


def _floats(values: np.ndarray) -> tuple[bytes, bool]:
    """float16 bytes when that is exact, else float32."""
    half = values.astype(np.float16)
    if np.array_equal(half.astype(np.float32), values) and np.isfinite(half).all():
        return half.astype("<f2").tobytes(), True
    return values.astype("<f4").tobytes(), False


def _read_floats(reader: ByteReader, count: int, half: int, what: str) -> np.ndarray:
    return reader.array("<f2" if half else "<f4", count, what).astype(np.float32)
