"""The int8 model as a QDQ ONNX graph: fp32 operators between QuantizeLinear/DequantizeLinear pairs.

The ONNX "QDQ" format (onnxruntime's quantization docs): every tensor with an int8 scale passes
through ``QuantizeLinear -> DequantizeLinear`` with our scale; weights get per-output-channel scales
(``DequantizeLinear`` on axis 0) and biases are int32 with scale ``input_scale * weight_scale[c]``,
exactly the integers of `Quantization`. onnxruntime fuses these patterns into its integer kernels
(QLinearConv, QLinearAdd, ...).

Stored as uint8, shifted by 128: an activation's zero point is ``zero_point + 128`` and a weight is
``w + 128`` with zero point 128 on every channel, so every dequantized value is the reference's
exactly. Why not int8: onnxruntime's u8 x s8 kernels on AVX2 without VNNI multiply-add pairs into
int16 with saturation (VPMADDUBSW; 2 * 255 * 127 > 32767), and our weights use all of [-127, 127]:
with int8 weights its fused kernels agreed with the engine on 82% of top-1 answers (211 held-out
photos, ``results/imagenet-small.sqz``), with uint8 on 98.6% (the published model: 96.7%). Its
u8 x u8 kernels widen to int16 before multiplying and do not saturate; QLinearConv accepts a per-channel
weight zero point when all channels share it (onnxruntime issue 28447: "zero point of per-channel
filter must be same").

Where it deviates from the reference engine: onnxruntime rounds ties to even (the engine: away from
zero), requantizes with a float multiplier rather than gemmlowp's fixed point, adds with floats and
divides the global average pool in float; so the two agree closely, not bit for bit
(``benchmarks/bench_int8.py`` measures how closely).
"""

from __future__ import annotations

import os

import numpy as np

from squeezenet.compress.sparse import SparseLayer
from squeezenet.export.graph import Conv, Fire, GlobalAveragePool, MaxPool, build_network
from squeezenet.int8.calibration import INPUT
from squeezenet.int8.quantize import Quantization

__all__ = ["export_onnx_qdq", "QDQ_OPSET"]

QDQ_OPSET = 17  # per-axis QuantizeLinear/DequantizeLinear need 13 or later
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
UINT8_OFFSET = 128  # int8 value + 128 = uint8 value, for activations, zero points and weights alike


class _GraphBuilder:
    def __init__(self, quantization: Quantization) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.quantization = quantization
        self.nodes: list = []
        self.initializers: list = []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, operator: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(self.helper.make_node(operator, inputs, [output], name=output, **attributes))
        return output

    def quantize_dequantize(self, value: str, tensor: str, label: str) -> str:
        """``value`` rounded onto ``tensor``'s int8 grid and back to float."""
        activation = self.quantization.activations[tensor]
        scale = f"{tensor}.scale"
        zero_point = f"{tensor}.zero_point"
        if scale not in {initializer.name for initializer in self.initializers}:
            self.constant(scale, np.array(activation.scale, dtype=np.float32))
            self.constant(zero_point, np.array(activation.zero_point + UINT8_OFFSET, dtype=np.uint8))
        quantized = self.node("QuantizeLinear", [value, scale, zero_point], f"{label}.quantized")
        return self.node("DequantizeLinear", [quantized, scale, zero_point], f"{label}.dequantized")

    def convolution(self, value: str, conv: Conv) -> str:
        plan = self.quantization.convolutions[conv.layer]
        channels = conv.out_channels
        input_scale = np.float64(self.quantization.activations[plan.input].scale)
        bias_scale = (input_scale * plan.weight_scale.astype(np.float64)).astype(np.float32)
        weight = self.node("DequantizeLinear", [
            self.constant(f"{conv.name}.weight_uint8", (plan.weight.astype(np.int16) + UINT8_OFFSET).astype(np.uint8)),
            self.constant(f"{conv.name}.weight_scale", plan.weight_scale.astype(np.float32)),
            self.constant(f"{conv.name}.weight_zero_point", np.full(channels, UINT8_OFFSET, dtype=np.uint8)),
        ], f"{conv.name}.weight", axis=0)
        bias = self.node("DequantizeLinear", [
            self.constant(f"{conv.name}.bias_int32", plan.bias.astype(np.int32)),
            self.constant(f"{conv.name}.bias_scale", bias_scale),
            self.constant(f"{conv.name}.bias_zero_point", np.zeros(channels, dtype=np.int32)),
        ], f"{conv.name}.bias", axis=0)
        out = self.node("Conv", [value, weight, bias], f"{conv.name}.conv", kernel_shape=[conv.kernel] * 2,
                        strides=[conv.stride] * 2, pads=[conv.padding] * 4)
        if conv.relu:
            out = self.node("Relu", [out], f"{conv.name}.relu")
        return self.quantize_dequantize(out, plan.output, conv.name)


def export_onnx_qdq(spec: dict, layers: list[SparseLayer], quantization: Quantization, path: str | os.PathLike, *,
                    metadata: dict[str, str] | None = None) -> None:
    """Write the QDQ ONNX model of ``layers`` quantized as ``quantization`` (input ``input``
    float32 [batch, C, H, W], output ``logits`` float32 [batch, classes]); ``metadata`` becomes the
    file's metadata properties (the input preset and class names that ``squeezenet evaluate`` reads)."""
    import onnx
    from onnx import TensorProto, helper

    network = build_network(spec)
    if len(layers) != len(network.convolutions()) or set(quantization.convolutions) != {
            conv.layer for conv in network.convolutions()}:
        raise ValueError("the quantization and the layers do not match this network")
    graph = _GraphBuilder(quantization)
    value = graph.quantize_dequantize(INPUT_NAME, INPUT, INPUT)
    current = INPUT
    for operation in network.operations:
        if isinstance(operation, Conv):
            value, current = graph.convolution(value, operation), operation.name
        elif isinstance(operation, MaxPool):
            pooled = graph.node("MaxPool", [value], operation.name, kernel_shape=[operation.kernel] * 2,
                                strides=[operation.stride] * 2, ceil_mode=1)
            value = graph.quantize_dequantize(pooled, current, operation.name)
        elif isinstance(operation, Fire):
            name = operation.name
            squeezed = graph.convolution(value, operation.squeeze)
            joined = graph.node("Concat", [graph.convolution(squeezed, operation.expand1x1),
                                           graph.convolution(squeezed, operation.expand3x3)], f"{name}.concat", axis=1)
            joined = graph.quantize_dequantize(joined, f"{name}.concat", f"{name}.concat")
            if operation.bypass is not None:
                shortcut = graph.convolution(value, operation.bypass) if isinstance(operation.bypass, Conv) else value
                total = graph.node("Add", [joined, shortcut], f"{name}.add")
                joined, current = graph.quantize_dequantize(total, name, name), name
            else:
                current = f"{name}.concat"
            value = joined
        elif isinstance(operation, GlobalAveragePool):
            pooled = graph.node("GlobalAveragePool", [value], operation.name)
            value = graph.node("Flatten", [pooled], OUTPUT_NAME, axis=1)
    inputs = [helper.make_tensor_value_info(
        INPUT_NAME, TensorProto.FLOAT, ["batch", network.input_channels, network.input_size, network.input_size])]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", network.num_classes])]
    model = helper.make_model(
        helper.make_graph(graph.nodes, "squeezenet_int8_qdq", inputs, outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", QDQ_OPSET)],
        producer_name="squeezenet.int8.onnx_qdq",
    )
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
