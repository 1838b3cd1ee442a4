"""The published Deep Compression SqueezeNet file (``compressed_SqueezeNet.net``, 675,763 bytes).

Layout (little-endian, no header): uint32[26] stored-entry counts, then per layer in network order
a float32[256] codebook, float32[out] bias, uint8[N] codes and uint8[ceil(N/2)] 4-bit gaps, low
nibble first. The layer shapes are SqueezeNet v1.0's, so they are not stored in the file.
"""

from __future__ import annotations

import os

import numpy as np

from squeezenet.architecture import CAFFE_SQUEEZENET_V1_0, weight_shapes
from squeezenet.compress.sparse import SparseLayer
from squeezenet.safe_io import atomic_write_bytes

__all__ = ["parse_net", "read_net", "write_net", "net_to_model", "model_to_net_layers", "NET_SHA256", "NET_URL"]

NET_SHA256 = "e4ab6960ae8cd81505e1c2136921201507e930966c53deaf15862a395b3a3261"
NET_URL = "https://github.com/songhan/SqueezeNet-Deep-Compression/raw/master/compressed_SqueezeNet.net"
CODEBOOK_SIZE = 256
MAX_GAP = 15


def _v1_0_shapes() -> list[tuple[tuple[int, ...], int]]:
    """(weight shape, output channels) of the 26 layers: the file stores no architecture."""
    return [(shape, shape[0]) for shape, _ in weight_shapes(CAFFE_SQUEEZENET_V1_0)]


def read_net(path: str | os.PathLike) -> list[SparseLayer]:
    """Parse a .net file into 26 SparseLayers, checking every length against the file's size first."""
    with open(path, "rb") as handle:
        return parse_net(handle.read(), str(path))


def parse_net(data: bytes, path: str = "<bytes>") -> list[SparseLayer]:
    """Parse the bytes of a .net file (see ``read_net``)."""
    shapes = _v1_0_shapes()
    header_bytes = 4 * len(shapes)
    if len(data) < header_bytes:
        raise ValueError(f"{path}: truncated .net file ({len(data)} bytes, header alone needs {header_bytes})")
    counts = np.frombuffer(data, dtype="<u4", count=len(shapes))
    for index, ((shape, _), count) in enumerate(zip(shapes, counts)):
        # Every stored entry takes at least one position, so a real file never declares more.
        if int(count) > int(np.prod(shape)):
            raise ValueError(f"{path}: not a .net file of SqueezeNet v1.0 (its header declares {int(count):,} "
                             f"entries for layer {index}, which has {int(np.prod(shape)):,} weights)")
    expected = header_bytes + sum(
        4 * CODEBOOK_SIZE + 4 * out + int(n) + (int(n) + 1) // 2 for (_, out), n in zip(shapes, counts)
    )
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "oversized"
        raise ValueError(f"{path}: {kind} .net file: {len(data)} bytes where its counts need {expected}")
    layers = []
    offset = header_bytes
    for (shape, out), count in zip(shapes, counts):
        count = int(count)
        codebook = np.frombuffer(data, "<f4", CODEBOOK_SIZE, offset).astype(np.float32)
        offset += 4 * CODEBOOK_SIZE
        bias = np.frombuffer(data, "<f4", out, offset).astype(np.float32)
        offset += 4 * out
        codes = np.frombuffer(data, np.uint8, count, offset)
        offset += count
        packed = np.frombuffer(data, np.uint8, (count + 1) // 2, offset)
        offset += (count + 1) // 2
        gaps = np.empty(2 * len(packed), dtype=np.uint8)
        gaps[0::2] = packed & 0x0F
        gaps[1::2] = packed >> 4
        layer = SparseLayer(shape, codebook, codes, gaps[:count], bias)
        if count and int(layer.positions()[-1]) >= layer.numel:
            raise ValueError(f"{path}: layer {len(layers)} indexes past its {layer.numel} weights")
        layers.append(layer)
    return layers


def write_net(path: str | os.PathLike, layers: list[SparseLayer]) -> int:
    """Write 26 SparseLayers in the .net layout (atomically); returns the bytes written."""
    shapes = _v1_0_shapes()
    if len(layers) != len(shapes):
        raise ValueError(f"the .net format holds SqueezeNet v1.0's {len(shapes)} layers, got {len(layers)}")
    parts = [np.array([len(layer.codes) for layer in layers], dtype="<u4").tobytes()]
    for layer, (shape, _) in zip(layers, shapes):
        if tuple(layer.shape) != shape:
            raise ValueError(f"layer shape {tuple(layer.shape)} is not SqueezeNet v1.0's {shape}")
        if len(layer.codebook) != CODEBOOK_SIZE or (len(layer.codes) and int(layer.codes.max()) >= CODEBOOK_SIZE):
            raise ValueError("the .net format needs 8-bit codes and a 256-entry codebook")
        if len(layer.gaps) and int(layer.gaps.max()) > MAX_GAP:
            raise ValueError("the .net format needs 4-bit gaps")
        gaps = np.zeros(len(layer.gaps) + len(layer.gaps) % 2, dtype=np.uint8)
        gaps[: len(layer.gaps)] = layer.gaps
        parts += [
            np.asarray(layer.codebook, "<f4").tobytes(),
            np.asarray(layer.bias, "<f4").tobytes(),
            np.asarray(layer.codes, np.uint8).tobytes(),
            (gaps[0::2] | (gaps[1::2] << 4)).astype(np.uint8).tobytes(),
        ]
    blob = b"".join(parts)
    atomic_write_bytes(path, blob)
    return len(blob)


def net_to_model(layers: list[SparseLayer]):
    """The Caffe-flavoured SqueezeNet v1.0 (conv10 padding 1, 227x227 BGR input) with these weights."""
    from squeezenet.models.from_layers import model_from_layers

    return model_from_layers(CAFFE_SQUEEZENET_V1_0, layers)


def model_to_net_layers(model, codebooks: list[np.ndarray] | None = None) -> list[SparseLayer]:
    """Encode a SqueezeNet v1.0 in the .net form.

    With ``codebooks`` (e.g. those read from a .net file) each non-zero weight takes its nearest
    entry, so decoding and re-encoding the published file reproduces it byte for byte. Without,
    each layer gets a 255-level linear-initialised k-means codebook plus the 0.0 entry.
    """
    from squeezenet.compress.quantize import quantize_layer
    from squeezenet.models import weight_layers

    layers = weight_layers(model)
    if len(layers) != 26 or getattr(getattr(model, "spec", None), "family", None) != "squeezenet":
        raise ValueError("the .net format holds SqueezeNet v1.0 only")
    result = []
    for index, (_, module) in enumerate(layers):
        weight = module.weight.detach().cpu().numpy().astype(np.float32)
        bias = module.bias.detach().cpu().numpy() if module.bias is not None else np.zeros(weight.shape[0], np.float32)
        if codebooks is not None:
            codebook = np.asarray(codebooks[index], dtype=np.float32)
        else:
            # The pipeline's k-means (255 centroids + the 0.0 entry), padded with zeros to the format's 256.
            quantization = quantize_layer(module.weight, 8)
            weight = quantization.weight().numpy()
            codebook = np.zeros(CODEBOOK_SIZE, dtype=np.float32)
            codebook[: len(quantization.codebook)] = quantization.codebook.numpy()
        result.append(SparseLayer.from_dense(weight, bias, codebook, max_gap=MAX_GAP))
    return result
