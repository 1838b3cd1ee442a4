"""The static memory plan of the int8 engine: every buffer's bytes, where each tensor sits in the arena,
and which layers write through the max pool after them.

int8 activations live in one arena used from both ends, as in `squeezenet.export.c99.model`: the
quantized input starts at the high end, and each operation reads one end and writes the other, so
the arena needs the largest input + output pair. Max pooling runs in place. A Fire module's squeeze
output sits in the arena too, only while the module runs: without a bypass it goes to the other end,
after which the module's input is dead and the expand outputs overwrite it from the same end (the
arena holds input + squeeze, then squeeze + output); with a bypass the input is read again, so the
squeeze output goes next to it and the output to the other end (input + squeeze + output).

Pooled writes: a convolution, or a Fire module without a bypass, followed by a max pool can write the
pooled tensor straight away (``templates/convolution_max_pool.c``): per output channel its rows are
computed in order into a band of the pool's kernel rows, and each pooled row is stored as soon as
its window is in the band. The unpooled tensor never exists and no row is computed twice; the
arithmetic is that of the convolution then the pool, so the result is the same bit for bit. The
planner writes a layer that way only when that lowers the arena (ImageNet's conv1 and fire4: their
unpooled outputs size it), since row by row costs some speed.

A convolution keeps one int32 accumulator plane (one row for a pooled write) and one decoded filter
(per entry with a non-zero codebook value: its code, then its int8 weight, and its tap). The weights
stay entropy-coded in flash (`squeezenet.export.c99_int8.weights`); the decoders' state, a position
and a rANS state per stream, is a few words on the stack. Each layer's streams are read once per
inference, in output-channel order: a pooled write decodes a filter once and reuses it for every
row, so no pass restarts a stream and no RAM holds an expanded layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezenet.export.graph import Conv, Fire, GlobalAveragePool, MaxPool, Network

__all__ = ["MemoryPlan", "memory_plan", "check_budget", "STACK_BYTES"]

# The deepest call chain (squeezenet_predict -> sq_run -> a Fire -> its expand -> sq_convolve_max_pool
# -> sq_accumulate or sq_rescale) holds a few dozen scalars: gcc -fstack-usage on x86-64 sums about
# 560 bytes along it at -O0 and 480 at -O2 (ImageNet), and a 32-bit core spills smaller registers.
# An estimate with margin, not a measurement of the target.
STACK_BYTES = 1024


@dataclass(frozen=True)
class MemoryPlan:
    arena_bytes: int
    arena_peak: str  # the operation that sizes the arena, with its tensors' bytes
    input_offset: int  # where the quantized input sits in the arena
    offsets: tuple[int | None, ...]  # per operation, its output's offset in the arena (None: the sums)
    squeezed_offsets: tuple[int | None, ...]  # per operation, a Fire module's squeeze output offset, else None
    pooled: tuple[bool, ...]  # per operation, True when it writes through the max pool after it
    accumulator_words: int
    accumulator_layer: str
    filter_taps: int
    pool_row_bytes: int  # 0 when every max pool is written through
    band_bytes: int  # 0 when no layer writes through a max pool
    sums_bytes: int
    stack_bytes: int = STACK_BYTES

    @property
    def buffers(self) -> dict[str, int]:
        """Bytes of every static buffer, and the stack estimate."""
        return {
            "arena": self.arena_bytes,
            "accumulators": 4 * self.accumulator_words,
            "filter": 4 * self.filter_taps,  # int16 weight (first its code) + uint16 tap
            "pool_row": self.pool_row_bytes,
            "band": self.band_bytes,
            "sums": self.sums_bytes,
            "stack": self.stack_bytes,
        }

    @property
    def ram_bytes(self) -> int:
        return sum(self.buffers.values())


def _out_bytes(operation, pool: MaxPool | None) -> int:
    """int8 output bytes of one operation, or of the pool after it when it writes through that pool."""
    if pool is not None:
        return pool.channels * pool.out_size**2
    if isinstance(operation, Conv):
        return operation.out_channels * operation.out_size**2
    if isinstance(operation, MaxPool):
        return operation.channels * operation.out_size**2
    if isinstance(operation, Fire):
        return operation.out_channels * operation.size**2
    return 0


def _in_bytes(operation) -> int:
    if isinstance(operation, Conv):
        return operation.in_channels * operation.in_size**2
    if isinstance(operation, Fire):
        return operation.in_channels * operation.size**2
    return operation.channels * operation.in_size**2


def _can_pool(operations: tuple, index: int) -> bool:
    """Whether operation ``index`` can write through the max pool after it (a bypass adds into the
    unpooled output, so a Fire module with one cannot)."""
    operation = operations[index]
    return (index + 1 < len(operations) and isinstance(operations[index + 1], MaxPool)
            and (isinstance(operation, Conv) or (isinstance(operation, Fire) and operation.bypass is None)))


def _arena(network: Network, pooled: tuple[bool, ...]):
    """Arena bytes, the operation that sizes it, the input's offset, and each output's and squeeze
    output's offset.

    A tensor sits at the low end (from 0) or the high end (ending at the arena's end), with an
    extent: the bytes it reserves from its end. An operation writes at the other end, so the arena
    must hold extent + output. Max pooling in place keeps the extent at the high end (its output
    starts where its input started) and shrinks it at the low end.
    """
    operations = network.operations
    input_bytes = network.input_channels * network.input_size**2
    outputs: list[tuple[str, int]] = []  # (end, bytes) of each output
    squeezes: list[tuple[str, int, int] | None] = []  # (end, bytes, reserved before it from that end)
    end, extent = "high", input_bytes
    arena, peak = input_bytes, f"input ({input_bytes} bytes)"

    def need(bytes_: int, what: str) -> None:
        nonlocal arena, peak
        if bytes_ > arena:
            arena, peak = bytes_, what

    other = {"low": "high", "high": "low"}
    for index, operation in enumerate(operations):
        pool = operations[index + 1] if pooled[index] else None
        name = operation.name if pool is None else f"{operation.name} + {pool.name} (pooled write)"
        in_bytes, out_bytes = _in_bytes(operation), _out_bytes(operation, pool)
        output = "output" if pool is None else "pooled output"
        squeezes.append(None)
        if isinstance(operation, GlobalAveragePool):
            outputs.append(("sums", 0))
        elif isinstance(operation, MaxPool) and index > 0 and pooled[index - 1]:
            outputs.append(outputs[-1])  # already written by the layer before it
        elif isinstance(operation, MaxPool):
            extent = out_bytes if end == "low" else extent
            outputs.append((end, extent))
        elif isinstance(operation, Fire) and operation.bypass is None:
            squeezed = operation.squeeze.out_channels * operation.size**2
            need(extent + squeezed, f"{operation.name} (input {in_bytes} + squeeze output {squeezed} bytes)")
            need(squeezed + out_bytes, f"{name} (squeeze output {squeezed} + {output} {out_bytes} bytes)")
            squeezes[-1] = (other[end], squeezed, 0)
            extent = out_bytes
            outputs.append((end, extent))
        elif isinstance(operation, Fire):
            squeezed = operation.squeeze.out_channels * operation.size**2
            need(extent + squeezed + out_bytes,
                 f"{name} (input {in_bytes} + squeeze output {squeezed} + {output} {out_bytes} bytes)")
            squeezes[-1] = (end, squeezed, extent)
            end, extent = other[end], out_bytes
            outputs.append((end, extent))
        else:
            need(extent + out_bytes, f"{name} (input {in_bytes} + {output} {out_bytes} bytes)")
            end, extent = other[end], out_bytes
            outputs.append((end, extent))

    def offset(where: str, size: int, before: int = 0) -> int:
        return before if where == "low" else arena - before - size

    offsets = tuple(None if where == "sums" else offset(where, size) for where, size in outputs)
    squeezed_offsets = tuple(None if squeeze is None else offset(*squeeze) for squeeze in squeezes)
    return arena, peak, arena - input_bytes, offsets, squeezed_offsets


def _plan(network: Network, filter_taps: int, pooled: tuple[bool, ...]) -> MemoryPlan:
    arena, peak, input_offset, offsets, squeezed_offsets = _arena(network, pooled)
    operations = network.operations
    # A convolution's int32 accumulators: one plane, or one row when it writes through a pool.
    rows: dict[str, int] = {}
    bands = [0]
    for index, operation in enumerate(operations):
        if pooled[index]:
            convs = [operation] if isinstance(operation, Conv) else [operation.expand1x1, operation.expand3x3]
            rows.update({conv.name: conv.out_size for conv in convs})
            bands += [operations[index + 1].kernel * conv.out_size for conv in convs]
    words = {conv.name: rows.get(conv.name, conv.out_size**2) for conv in network.convolutions()}
    widest = max(network.convolutions(), key=lambda conv: words[conv.name])
    shape = "output row" if widest.name in rows else "outputs"
    size = widest.out_size if widest.name in rows else f"{widest.out_size}x{widest.out_size}"
    unpooled = [op for index, op in enumerate(operations)
                if isinstance(op, MaxPool) and not (index > 0 and pooled[index - 1])]
    return MemoryPlan(
        arena_bytes=arena,
        arena_peak=peak,
        input_offset=input_offset,
        offsets=offsets,
        squeezed_offsets=squeezed_offsets,
        pooled=pooled,
        accumulator_words=words[widest.name],
        accumulator_layer=f"{widest.name} ({size} {shape})",
        filter_taps=max(filter_taps, 1),
        pool_row_bytes=max([pool.in_size for pool in unpooled] + [0]),
        band_bytes=max(bands),
        sums_bytes=4 * network.num_classes,
    )


def memory_plan(network: Network, filter_taps: int) -> MemoryPlan:
    """The plan of ``network``; ``filter_taps`` is the most entries with a non-zero codebook value of
    any one filter.

    Each layer that can write through the max pool after it does so when that lowers the arena (a
    pooled write is slower, row by row: not worth it for a few bytes of pool row elsewhere), tried
    again until no such layer is left (writing one through can make another the peak)."""
    operations = network.operations
    pooled = [False] * len(operations)
    best = _plan(network, filter_taps, tuple(pooled))
    improved = True
    while improved:
        improved = False
        for index in range(len(operations)):
            if pooled[index] or not _can_pool(operations, index):
                continue
            trial = _plan(network, filter_taps, tuple(pooled[:index] + [True] + pooled[index + 1:]))
            if trial.arena_bytes < best.arena_bytes:
                pooled[index], best, improved = True, trial, True
    return best


def check_budget(plan: MemoryPlan, ram_budget: int | None) -> None:
    """Raise ValueError (one line, naming the largest buffer) when the plan exceeds ``ram_budget`` bytes."""
    if ram_budget is None or plan.ram_bytes <= ram_budget:
        return
    buffers = plan.buffers
    largest = max(buffers, key=buffers.get)
    detail = {"arena": f"int8 activation arena, sized by {plan.arena_peak}",
              "accumulators": f"int32 accumulators of {plan.accumulator_layer}"}.get(largest, f"{largest} buffer")
    raise ValueError(f"the int8 engine needs {plan.ram_bytes} bytes of RAM, over the budget of {ram_budget}: "
                     f"its largest buffer is the {detail}: {buffers[largest]} bytes")
