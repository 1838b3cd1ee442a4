"""``squeezenet export --format c --precision int8``: a model file + calibration photos -> an int8
``model.c`` + ``model.h`` that is bit-identical to `squeezenet.int8.reference.Int8Model`."""

from __future__ import annotations

import os

import numpy as np

from squeezenet.export.c99.export import export_banner
from squeezenet.export.c99_int8.model import emit_int8_model
from squeezenet.export.compressed import CompressedModel, compressed_model
from squeezenet.export.output_folder import write_files
from squeezenet.int8.reference import Int8Model
from squeezenet.weights import resolve_weights

__all__ = ["INT8_C_FILES", "export_c_int8"]

INT8_C_FILES = ("model.c", "model.h")


def export_c_int8(weights_path: str | os.PathLike, folder: str | os.PathLike, *, calibration_images: np.ndarray,
                  command: str, ram_budget: int | None = None, arch: str | None = None,
                  compressed: CompressedModel | None = None, int8_model: Int8Model | None = None) -> dict:
    """Calibrate on ``calibration_images`` (preprocessed float32 [N, C, H, W]), quantize exactly as
    `Int8Model.calibrated` does, and write the int8 engine into ``folder``; returns sizes for the CLI.

    ``compressed`` and ``int8_model`` (calibrated on those images) skip work the caller already did.
    Raises ValueError when the static RAM plan exceeds ``ram_budget`` bytes (nothing is written)."""
    compressed = compressed or compressed_model(weights_path, arch)
    model = int8_model or Int8Model.calibrated(compressed.spec, compressed.layers, calibration_images)
    banner = export_banner("squeezenet.export.c99_int8", command, weights_path, model.network, compressed, [
        f"int8 (TFLite scheme, {model.quantization.range_rule} ranges, calibrated on {len(calibration_images)} "
        "photos), bit-identical to squeezenet.int8.reference.Int8Model.",
        "Weights stay entropy-coded as in the model file (codebooks, Huffman or rANS codes and relative indices) "
        "and are decoded one filter at a time."])
    code = emit_int8_model(model, compressed.layers, banner=banner, preprocess=f"the '{compressed.preprocess}' preset",
                           ram_budget=ram_budget)
    paths = write_files(folder, {"model.c": code.source.encode(), "model.h": code.header.encode()})
    return {
        "format": "c",
        "precision": "int8",
        "out": str(folder),
        "files": [str(path) for path in paths],
        "ram_bytes": code.plan.ram_bytes,
        "ram_buffers": code.plan.buffers,
        "arena_peak": code.plan.arena_peak,
        "weight_bytes": code.weight_bytes,
        "model_file_bytes": resolve_weights(str(weights_path)).stat().st_size,
        "layer_forms": code.layer_forms,
        "preprocess": compressed.preprocess,
        "calibration_images": int(len(calibration_images)),
        "quantized_at_export": compressed.quantized_here,
    }
