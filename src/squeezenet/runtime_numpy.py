"""Run a compressed SqueezeNet (.net or .sqz) with NumPy alone: no torch in this module's imports.

For a device that has Python and NumPy but no room for torch. The layers are read into the
Deep Compression form (`SparseLayer`: codebook, codes, relative indices), expanded once to dense
float32 weights, and the network walks `squeezenet.export.graph.Network`. Input is the
preprocessed float32 batch [N, C, H, W] that the PyTorch model takes.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.graph import CAFFE_SQUEEZENET_V1_0, Conv, Fire, GlobalAveragePool, MaxPool, Network, build_network

__all__ = ["NumpyModel", "load_numpy_model", "read_compressed", "read_net_layers", "read_sqz_layers"]

_NET_CODEBOOK_SIZE = 256


def read_net_layers(path: str | os.PathLike, network: Network) -> list[SparseLayer]:
    """The published .net layout (see docs of `squeezenet.compress.caffe_net`), read with NumPy only.

    uint32 counts per layer, then per layer float32[256] codebook, float32[out] bias, uint8 codes and
    4-bit gaps packed two per byte, low nibble first.
    """
    data = Path(path).read_bytes()
    convolutions = network.convolutions()
    header = 4 * len(convolutions)
    if len(data) < header:
        raise ValueError(f"{path}: not a .net file (only {len(data)} bytes)")
    counts = np.frombuffer(data, "<u4", len(convolutions)).astype(np.int64)
    needed = header + sum(4 * (_NET_CODEBOOK_SIZE + c.out_channels) + int(n) + (int(n) + 1) // 2
                          for c, n in zip(convolutions, counts))
    if len(data) != needed:
        raise ValueError(f"{path}: not a .net file of SqueezeNet v1.0 ({len(data)} bytes where its counts need {needed})")
    layers, offset = [], header
    for conv, count in zip(convolutions, counts):
        codebook = np.frombuffer(data, "<f4", _NET_CODEBOOK_SIZE, offset).astype(np.float32)
        offset += 4 * _NET_CODEBOOK_SIZE
        bias = np.frombuffer(data, "<f4", conv.out_channels, offset).astype(np.float32)
        offset += 4 * conv.out_channels
        codes = np.frombuffer(data, np.uint8, count, offset)
        offset += count
        packed = np.frombuffer(data, np.uint8, (count + 1) // 2, offset)
        offset += (count + 1) // 2
        gaps = np.stack([packed & 0x0F, packed >> 4], axis=1).reshape(-1)[:count]
        layers.append(SparseLayer(conv.weight_shape, codebook, codes, gaps, bias))
    return layers


def read_sqz_layers(path: str | os.PathLike) -> tuple[dict, list[SparseLayer]]:
    """(spec, layers) of a .sqz file (layout: docs/FORMAT.md), read without torch.

    `squeezenet.compress.sqz.read_sqz` reads the same bytes but takes the layer shapes from a torch
    model; here they come from `squeezenet.export.graph`, and the byte-level parsing reuses the
    torch-free `ByteReader` and entropy decoders. A test checks both readers give the same layers.
    """
    from squeezenet.compress.bytestream import ByteReader
    from squeezenet.compress.entropy import CODERS, MAX_ALPHABET, decode_symbols

    data = Path(path).read_bytes()
    if len(data) < 8 or not data.startswith(b"SQZ") or data[3] != 1:
        raise ValueError(f"{path}: not a version-1 .sqz file")
    if zlib.crc32(memoryview(data)[:-4]) != int.from_bytes(data[-4:], "little"):
        raise ValueError(f"{path}: CRC32 mismatch: the .sqz file is corrupt or truncated")
    reader = ByteReader(data, 4, len(data) - 4)
    try:
        # Inflate at most 1 MiB, as squeezenet.compress.sqz does: a zlib bomb stops there.
        inflater = zlib.decompressobj()
        text = inflater.decompress(reader.take(reader.varint("spec size", 1 << 20), "JSON header"), 1 << 20)
        if not inflater.eof:
            raise ValueError("JSON header is longer than 1 MiB or incomplete")
        header = json.loads(text)
        # The JSON header is {"spec": architecture, "classes": [...], "preprocess": name}.
        spec = header.get("spec") if isinstance(header, dict) else None
        if not isinstance(spec, dict):
            raise ValueError("JSON header holds no architecture spec")
        try:
            convolutions = build_network(spec).convolutions()
        except (TypeError, KeyError, AttributeError, IndexError, ArithmeticError) as error:
            raise ValueError(f"architecture spec does not describe a network ({type(error).__name__})") from None
        sizes = [size for conv in convolutions for size in conv.weight_shape]
        if not all(type(size) is int and size > 0 for size in sizes):
            raise ValueError("architecture spec gives a layer a size that is not a positive integer")
        # The same cap as squeezenet.compress.sqz.MAX_PARAMETERS: declared shapes bound what is allocated.
        if sum(math.prod(conv.weight_shape) for conv in convolutions) > 1 << 26:
            raise ValueError("architecture has more than 2**26 weights, more than this reader accepts")
        if reader.varint("layer count", len(convolutions)) != len(convolutions):
            raise ValueError("layer count disagrees with the architecture")
        layers = []
        for conv in convolutions:
            numel = int(np.prod(conv.weight_shape))
            width, coder, flags = reader.u8("bit width"), reader.u8("coder"), reader.u8("flags")
            if coder >= len(CODERS) or not flags & 2 or not 1 <= width <= 12:
                raise ValueError(f"layer {conv.name}: bad coder {coder}, bit width {width} or missing bias")
            size = reader.varint("codebook size", 1 << width)
            codebook = np.zeros(size, np.float32)
            codebook[1:] = reader.array("<f2" if flags & 1 else "<f4", size - 1, "codebook")
            bias = reader.array("<f2" if flags & 4 else "<f4", conv.out_channels, "bias").astype(np.float32)
            entries = reader.varint("entry count", numel)
            codes = decode_symbols(reader, CODERS[coder], entries, size)
            gaps = decode_symbols(reader, CODERS[coder], entries, min(numel, MAX_ALPHABET))
            layers.append(SparseLayer(conv.weight_shape, codebook, codes, gaps, bias))
    except (zlib.error, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: unreadable architecture spec ({error})") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if reader.remaining:
        raise ValueError(f"{path}: {reader.remaining} unexpected bytes after the last layer")
    return spec, layers


def read_compressed(path: str | os.PathLike) -> tuple[Network, list[SparseLayer]]:
    """(network, layers) of a .net or .sqz file, without torch."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if path.suffix == ".sqz" or head.startswith(b"SQZ"):
        spec, layers = read_sqz_layers(path)
        network = build_network(spec)
    elif path.suffix == ".net":
        network = build_network(CAFFE_SQUEEZENET_V1_0)
        layers = read_net_layers(path, network)
    else:
        raise ValueError(f"{path}: the NumPy runtime reads compressed .net or .sqz files, not {path.suffix or 'this file'}")
    convolutions = network.convolutions()
    if len(layers) != len(convolutions):
        raise ValueError(f"{path}: {len(layers)} weight layers where the network has {len(convolutions)}")
    for conv, layer in zip(convolutions, layers):
        if tuple(layer.shape) != conv.weight_shape:
            raise ValueError(f"{path}: layer {conv.name} has shape {tuple(layer.shape)}, expected {conv.weight_shape}")
    return network, layers


def _convolve(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, conv: Conv) -> np.ndarray:
    """[N, C, H, W] -> [N, O, H', W'] as one matrix product over (channel, ky, kx) windows."""
    batch = x.shape[0]
    out_size = conv.out_size
    if conv.padding:
        x = np.pad(x, ((0, 0), (0, 0), (conv.padding,) * 2, (conv.padding,) * 2))
    if conv.kernel == 1 and conv.stride == 1:
        y = np.matmul(weight.reshape(conv.out_channels, -1), x.reshape(batch, conv.in_channels, -1))
    else:
        windows = np.lib.stride_tricks.sliding_window_view(x, (conv.kernel, conv.kernel), axis=(2, 3))
        windows = windows[:, :, :: conv.stride, :: conv.stride][:, :, :out_size, :out_size]
        # [N, C, H', W', k, k] -> [N, H'W', C k k] so one matmul does the whole layer.
        patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(batch, out_size * out_size, -1)
        y = np.matmul(weight.reshape(conv.out_channels, -1), patches.transpose(0, 2, 1))
    y = y.reshape(batch, conv.out_channels, out_size, out_size) + bias.reshape(1, -1, 1, 1)
    return np.maximum(y, 0.0, out=y) if conv.relu else y


def _max_pool(x: np.ndarray, pool: MaxPool) -> np.ndarray:
    # Pad on the bottom/right with -inf so the rounded-up last window sees only real pixels.
    reach = (pool.out_size - 1) * pool.stride + pool.kernel
    extra = max(0, reach - pool.in_size)
    if extra:
        x = np.pad(x, ((0, 0), (0, 0), (0, extra), (0, extra)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool.kernel, pool.kernel), axis=(2, 3))
    windows = windows[:, :, :: pool.stride, :: pool.stride][:, :, : pool.out_size, : pool.out_size]
    return windows.max(axis=(4, 5))


class NumpyModel:
    """A callable: float32 [N, C, H, W] -> float32 logits [N, num_classes]."""

    def __init__(self, network: Network, layers: list[SparseLayer]) -> None:
        self.network = network
        self.parameters = {
            conv.layer: (layer.dense_weight(), np.asarray(layer.bias, dtype=np.float32))
            for conv, layer in zip(network.convolutions(), layers)
        }

    def _conv(self, x: np.ndarray, conv: Conv) -> np.ndarray:
        weight, bias = self.parameters[conv.layer]
        return _convolve(x, weight, bias, conv)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32)
        expected = (self.network.input_channels, self.network.input_size, self.network.input_size)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"input must have shape [N, {', '.join(map(str, expected))}], got {list(x.shape)}")
        for operation in self.network.operations:
            if isinstance(operation, Conv):
                x = self._conv(x, operation)
            elif isinstance(operation, MaxPool):
                x = _max_pool(x, operation)
            elif isinstance(operation, Fire):
                squeezed = self._conv(x, operation.squeeze)
                out = np.concatenate([self._conv(squeezed, operation.expand1x1),
                                      self._conv(squeezed, operation.expand3x3)], axis=1)
                if operation.bypass == "identity":
                    out += x
                elif isinstance(operation.bypass, Conv):
                    out += self._conv(x, operation.bypass)
                x = out
            elif isinstance(operation, GlobalAveragePool):
                x = x.mean(axis=(2, 3))
            else:
                raise AssertionError(f"no NumPy kernel for {operation!r}")
        return x


def load_numpy_model(path: str | os.PathLike) -> NumpyModel:
    """A `NumpyModel` from a .net or .sqz file."""
    return NumpyModel(*read_compressed(path))
