"""Export a model to ONNX (dynamic batch), check it with onnxruntime, and quantize it to int8.

fp32: ``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``; the torch.export path
needs onnxscript, which this project does not depend on), opset 17, the batch axis named
``batch``. int8: onnxruntime's static quantization (QDQ format, per-channel weights, MinMax
activation ranges) calibrated on a few preprocessed photos; we measure, rather than assume, how
often its top-1 agrees with fp32.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

__all__ = ["export_onnx", "model_metadata", "onnx_session", "run_onnx", "quantize_onnx_int8", "INPUT_NAME", "OUTPUT_NAME", "OPSET"]

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 17


def export_onnx(model: nn.Module, path: str | os.PathLike) -> None:
    """Write ``model`` (eval mode, BatchNorm folded or not) as ONNX with a dynamic batch axis."""
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("export_onnx needs a model built by squeezenet.models (it reads model.spec)")
    example = torch.zeros(1, spec.input_channels, spec.input_size, spec.input_size)
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, not broken
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    _write_metadata(path, model)


def model_metadata(model: nn.Module) -> dict[str, str]:
    """The input preset and the class names, as ONNX metadata properties, so that evaluating the .onnx
    file alone (``squeezenet evaluate --weights model.onnx``) preprocesses and labels as the model did."""
    import json

    from squeezenet.data import default_preprocess

    metadata = {"preprocess": default_preprocess(model)}
    if getattr(model, "class_names", None) is not None:
        metadata["classes"] = json.dumps(list(model.class_names))
    return metadata


def _write_metadata(path: str | os.PathLike, model: nn.Module) -> None:
    import onnx

    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, model_metadata(model))
    onnx.save(graph, str(path))


def onnx_session(path: str | os.PathLike, *, threads: int | None = None):
    """An onnxruntime CPU session; ``threads`` sets intra-op threads (None: onnxruntime's default)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for a bad model
        raise ValueError(f"{path}: onnxruntime cannot load it ({' '.join(str(error).split())[:200]})") from None


def run_onnx(session, images: np.ndarray) -> np.ndarray:
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(images, dtype=np.float32)})[0]


class _PhotoCalibration:
    """onnxruntime's CalibrationDataReader protocol: one preprocessed photo per call, then None."""

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_onnx_int8(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, calibration: np.ndarray) -> None:
    """onnxruntime's own static int8 quantization of an fp32 ONNX file, calibrated on ``calibration``
    [N, C, H, W]: the anchor the benchmarks compare with (`squeezenet export --format onnx-int8` writes
    our int8 engine's scales instead, `squeezenet.int8.onnx_qdq`)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.ndim != 4 or len(calibration) == 0:
        raise ValueError("int8 calibration needs at least one preprocessed image [N, C, H, W]")
    prepared = Path(int8_path).with_name(Path(int8_path).name + ".prepared.onnx")
    try:
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8_path),
            _PhotoCalibration(image[None] for image in calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    finally:
        prepared.unlink(missing_ok=True)
