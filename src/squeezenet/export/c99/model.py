"""Assemble ``model.c`` and ``model.h``: kernels, compressed weights, one function per layer, the entry point.

Memory: activations live in one static arena used from both ends (each operation reads one end
and writes the other, so the arena needs the largest input + output pair, not two copies of the
largest tensor); a Fire module's squeeze output, a padded layer input and one expanded layer have
their own buffers. The header states every size, and their total as ``SQUEEZENET_RAM_BYTES``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.c99 import convolution, fire, global_average_pool, max_pool
from squeezenet.export.c99.templates import kernel_source, render
from squeezenet.export.graph import Conv, Fire, GlobalAveragePool, MaxPool, Network

__all__ = ["CSource", "emit_model"]

_TILE_SLACK = 128  # floats past each activation buffer: at least the widest tile (AVX-512: 128)
_EMITTERS = {Conv: convolution, MaxPool: max_pool, Fire: fire, GlobalAveragePool: global_average_pool}


@dataclass(frozen=True)
class CSource:
    source: str  # model.c
    header: str  # model.h
    ram_bytes: int  # all static buffers
    weight_bytes: int  # the compressed weight arrays


def _floats(operation) -> tuple[int, int]:
    """(input floats, output floats) of one operation."""
    if isinstance(operation, Conv):
        return operation.in_channels * operation.in_size**2, operation.out_channels * operation.out_size**2
    if isinstance(operation, MaxPool):
        return operation.channels * operation.in_size**2, operation.channels * operation.out_size**2
    if isinstance(operation, Fire):
        return operation.in_channels * operation.size**2, operation.out_channels * operation.size**2
    return operation.channels * operation.in_size**2, operation.channels


def _arena_calls(network: Network) -> tuple[int, list[str]]:
    """The arena size and, per operation, the call that reads one end of the arena and writes the other.

    A tensor sits at the low end (from 0) or the high end (from arena - extent). An operation writes
    at the end its input is not at, so the arena must hold extent + output. Max pooling writes in
    place: output row r only overwrites input that rows before r have consumed (the output is
    smaller in both height and width, see ``templates/max_pool.c``).
    """
    sizes = [_floats(operation) for operation in network.operations]
    last = len(sizes) - 1
    placements: list[tuple[str, int]] = []  # (end, extent) of each operation's output
    arena, end, extent = 0, None, 0
    for index, (operation, (_, floats_out)) in enumerate(zip(network.operations, sizes)):
        if index == last:
            break
        if isinstance(operation, MaxPool) and end is not None:
            # In place: at the low end the output then ends at floats_out; at the high end it
            # still starts where the input started.
            extent = floats_out if end == "low" else extent
            placements.append((end, extent))
            continue
        end = "low" if end != "low" else "high"
        arena = max(arena, extent + floats_out)
        extent = floats_out
        placements.append((end, extent))
    calls, source = [], "input"
    for index, operation in enumerate(network.operations):
        if index == last:
            target = "logits"
        else:
            end, extent = placements[index]
            target = "sq_arena" if end == "low" else f"sq_arena + {arena - extent}"
        calls.append(f"    {_EMITTERS[type(operation)].function_name(operation)}({source}, {target});\n")
        source = target
    return arena, calls


def _banner(lines: list[str]) -> str:
    return "\n * ".join(line.replace("*/", "* /") for line in lines)


def emit_model(network: Network, layers: list[SparseLayer], *, banner: list[str], preprocess: str,
               header_name: str = "model.h") -> CSource:
    """The C source and header of ``network`` with ``layers`` (one per convolution, network order)."""
    convolutions = network.convolutions()
    if len(layers) != len(convolutions):
        raise ValueError(f"{len(layers)} weight layers for a network of {len(convolutions)} convolutions")
    arena, calls = _arena_calls(network)
    kernels = [convolution.KERNEL, max_pool.KERNEL, global_average_pool.KERNEL]
    if any(isinstance(op, Fire) and op.bypass == "identity" for op in network.operations):
        kernels.append(fire.KERNEL)
    # sq_rows holds one entry per output channel of the widest layer (and the end); a layer with
    # fewer output channels may use the rest to run its input channels in blocks.
    rows = max(conv.out_channels for conv in convolutions) + 1
    functions = []
    for operation in network.operations:
        emitter = _EMITTERS.get(type(operation))
        if emitter is None:
            raise ValueError(f"unsupported layer: {type(operation).__name__} {operation.name}")
        blocks = {"row_capacity": rows} if isinstance(operation, (Conv, Fire)) else {}
        functions.append(emitter.emit_function(operation, **blocks))
    scratch = dict(
        arena_floats=arena,
        squeezed_floats=max([op.squeeze.out_channels * op.size**2 for op in network.operations if isinstance(op, Fire)] + [1]),
        prepared_floats=max([convolution.prepared_floats(conv) for conv in convolutions] + [1]),
        scratch_weights=max([convolution.expanded_weights(layer) for layer in layers] + [1]),
        scratch_rows=rows,
        scratch_taps=max(conv.in_channels * conv.kernel**2 for conv in convolutions),
        pool_row_floats=max([op.in_size for op in network.operations if isinstance(op, MaxPool)] + [1]),
    )
    slack = 3 * _TILE_SLACK  # arena, squeezed and prepared buffers
    ram_bytes = 4 * (sum(scratch.values()) + scratch["scratch_weights"] + slack)
    weight_bytes = sum(convolution.weight_bytes(layer) for layer in layers)
    text = _banner(banner)
    placeholder = "SQUEEZENET_EXPORT_ID_PENDING"
    header = render(
        "model.h", banner=text, export_id=placeholder, guard=header_name.upper().replace(".", "_").replace("-", "_"),
        preprocess=preprocess, input_channels=network.input_channels, input_size=network.input_size,
        input_floats=network.input_channels * network.input_size**2, num_classes=network.num_classes,
        ram_bytes=ram_bytes, weight_bytes=weight_bytes, tile_slack=_TILE_SLACK, **scratch,
    )
    source = render(
        "model.c", banner=text, header_name=header_name, export_id=placeholder,
        kernels="\n".join(kernel_source(name) for name in kernels),
        weights="\n".join(convolution.emit_weights(conv, layer) for conv, layer in zip(convolutions, layers)),
        layers="\n".join(functions), calls="".join(calls),
    )
    # A hash of the pair: a model.c and a model.h written by different exports never agree on it.
    export_id = "0x" + hashlib.sha256((header + source).encode()).hexdigest()[:8] + "UL"
    return CSource(source.replace(placeholder, export_id), header.replace(placeholder, export_id), ram_bytes,
                   weight_bytes)
