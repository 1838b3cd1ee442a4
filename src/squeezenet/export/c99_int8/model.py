"""Assemble the int8 ``model.c`` and ``model.h``: kernels, compressed int8 weights, one function per
layer, the memory plan, and the two entry points (float in / float logits out, and int8 in / int32
sums out)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.c99.literals import c_float
from squeezenet.export.c99_int8 import (
    convolution,
    fire,
    global_average_pool,
    max_pool,
    stream,
)
from squeezenet.export.c99_int8.memory import MemoryPlan, check_budget, memory_plan
from squeezenet.export.c99_int8.templates import kernel_source, render
from squeezenet.export.c99_int8.weights import layer_storage
from squeezenet.export.graph import Conv, Fire, GlobalAveragePool, MaxPool
from squeezenet.int8.reference import Int8Model

__all__ = ["Int8CSource", "emit_int8_model"]

_EMITTERS = {Conv: convolution, MaxPool: max_pool, Fire: fire, GlobalAveragePool: global_average_pool}


def _kernels(network, plan: MemoryPlan) -> tuple[str, ...]:
    """The kernels this network calls, in an order where each uses only those before it: clang's
    -Wall rejects an unused static function or buffer."""
    operations = network.operations
    kernels = ["arithmetic.c", "add.c", "quantize_input.c", stream.KERNEL, convolution.KERNEL]
    if any(plan.pooled):
        kernels.append(convolution.POOLED_KERNEL)
    if any(isinstance(op, MaxPool) and not (index > 0 and plan.pooled[index - 1])
           for index, op in enumerate(operations)):
        kernels.append(max_pool.KERNEL)
    kernels.append(global_average_pool.KERNEL)
    if any(isinstance(op, Fire) and op.bypass == "identity" for op in operations):
        kernels.append(fire.SIMPLE_BYPASS_KERNEL)
    return tuple(kernels)


@dataclass(frozen=True)
class Int8CSource:
    source: str  # model.c
    header: str  # model.h
    plan: MemoryPlan
    weight_bytes: int  # flash held by the layers' arrays: entropy-coded streams, codebooks, biases, any tables
    layer_forms: dict[str, str]  # layer name -> "computed" (int8 weights and rescaling per filter) or its tables


def _banner(lines: list[str]) -> str:
    return "\n * ".join(line.replace("*/", "* /") for line in lines)


def _function(index: int, model: Int8Model, plan: MemoryPlan) -> str:
    """The function of operation ``index`` ("" for a max pool the layer before it writes through)."""
    quantization, operations = model.quantization, model.network.operations
    operation = operations[index]
    pool = operations[index + 1] if plan.pooled[index] else None
    if isinstance(operation, Conv):
        return convolution.emit_function(operation, quantization, pool=pool)
    if isinstance(operation, MaxPool):
        return "" if index > 0 and plan.pooled[index - 1] else max_pool.emit_function(operation)
    if isinstance(operation, Fire):
        return fire.emit_function(operation, quantization, pool=pool)
    if isinstance(operation, GlobalAveragePool):
        classifier = operations[-2]
        return global_average_pool.emit_function(operation, quantization.activations[classifier.name].zero_point)
    raise ValueError(f"unsupported layer: {type(operation).__name__} {operation.name}")


def _calls(model: Int8Model, plan: MemoryPlan) -> str:
    calls, source = [], f"sq_arena + {plan.input_offset}"
    operations = model.network.operations
    for index, (operation, offset, squeezed) in enumerate(zip(operations, plan.offsets, plan.squeezed_offsets)):
        if index > 0 and plan.pooled[index - 1]:
            continue  # written through by the layer before it
        target = "sums" if offset is None else f"sq_arena + {offset}"
        scratch = "" if squeezed is None else f"sq_arena + {squeezed}, "
        calls.append(f"    {_EMITTERS[type(operation)].function_name(operation)}({source}, {scratch}{target});\n")
        source = target
    return "".join(calls)


def emit_int8_model(model: Int8Model, layers: list[SparseLayer], *, banner: list[str], preprocess: str,
                    ram_budget: int | None = None, header_name: str = "model.h") -> Int8CSource:
    """The C source and header of the quantized ``model`` with its compressed ``layers`` (network order).

    Raises ValueError when the static memory plan exceeds ``ram_budget`` bytes."""
    network = model.network
    convolutions = network.convolutions()
    if len(layers) != len(convolutions):
        raise ValueError(f"{len(layers)} weight layers for a network of {len(convolutions)} convolutions")
    activations, plans = model.quantization.activations, model.quantization.convolutions
    storages = [layer_storage(conv, layer, plans[conv.layer], activations[plans[conv.layer].input].scale,
                              activations[plans[conv.layer].output].scale)
                for conv, layer in zip(convolutions, layers)]
    plan = memory_plan(network, max(storage.nonzero_per_filter for storage in storages))
    check_budget(plan, ram_budget)
    weight_bytes = sum(storage.flash_bytes for storage in storages)
    additions = [fire.emit_addition(op, model.quantization) for op in network.operations
                 if isinstance(op, Fire) and op.bypass is not None]
    input_quantization = model.input_quantization
    constants = dict(input_scale=c_float(input_quantization.scale), logits_scale=c_float(model.logits_scale))
    text = _banner(banner)
    placeholder = "SQUEEZENET_EXPORT_ID_PENDING"
    buffers = plan.buffers
    header = render(
        "model.h", banner=text, export_id=placeholder, guard=header_name.upper().replace(".", "_").replace("-", "_"),
        preprocess=preprocess, input_channels=network.input_channels, input_size=network.input_size,
        input_floats=network.input_channels * network.input_size**2, num_classes=network.num_classes,
        input_zero_point=input_quantization.zero_point, arena_bytes=plan.arena_bytes, arena_peak=plan.arena_peak,
        pooled_layers=", ".join(op.name for op, pooled in zip(network.operations, plan.pooled) if pooled) or "none",
        accumulator_words=plan.accumulator_words, accumulator_layer=plan.accumulator_layer,
        accumulator_bytes=buffers["accumulators"], filter_taps=plan.filter_taps, filter_bytes=buffers["filter"],
        pool_row_bytes=plan.pool_row_bytes, band_bytes=plan.band_bytes, sums_bytes=plan.sums_bytes,
        stack_bytes=plan.stack_bytes, ram_bytes=plan.ram_bytes,
        weight_bytes=weight_bytes, **constants,
    )
    source = render(
        "model.c", banner=text, header_name=header_name, export_id=placeholder,
        kernels="\n".join(kernel_source(name) for name in _kernels(network, plan)),
        weights="\n".join(convolution.emit_weights(conv, storage) for conv, storage in zip(convolutions, storages)),
        additions="\n".join(additions) or "/* none in this model */\n",
        layers="\n".join(text for text in (_function(index, model, plan) for index in range(len(network.operations)))
                         if text),
        calls=_calls(model, plan), input_offset=plan.input_offset, **constants,
    )
    # A hash of the pair: a model.c and a model.h written by different exports never agree on it.
    export_id = "0x" + hashlib.sha256((header + source).encode()).hexdigest()[:8] + "UL"
    return Int8CSource(source.replace(placeholder, export_id), header.replace(placeholder, export_id), plan,
                       weight_bytes, {conv.name: storage.form for conv, storage in zip(convolutions, storages)})
