"""Compile an int8 export with the tests' strict flags and read its raw int32 sums (bit-identity checks).

The float entry point is checked with `squeezenet.export.c99.check` unchanged (same harness)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from squeezenet.export.c99.check import STRICT_FLAGS, compile_check_binary, harness_source
from squeezenet.export.c99_int8.templates import kernel_source

__all__ = ["check_int8_export", "compile_int8_check_binary", "run_int8_check_binary"]


def compile_int8_check_binary(folder: str | os.PathLike, binary: str | os.PathLike,
                              flags: tuple[str, ...] = STRICT_FLAGS) -> None:
    """Build ``folder``'s model.c with the int8 harness, templates/check_int8_image.c (int8 images in,
    int32 sums out)."""
    harness = harness_source(kernel_source("check_int8_image.c"))
    compile_check_binary(folder, binary, flags, harness=("check_int8_main.c", harness))


def run_int8_check_binary(binary: str | os.PathLike, images: np.ndarray, num_classes: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(int32 sums [N, num_classes], top-1 [N]) of the compiled engine for int8 images [N, C, H, W]."""
    with tempfile.TemporaryDirectory() as scratch:
        inputs, outputs = Path(scratch) / "images.bin", Path(scratch) / "sums.bin"
        np.ascontiguousarray(images, dtype=np.int8).tofile(inputs)
        subprocess.run([str(binary), str(inputs), str(outputs)], check=True)
        rows = np.fromfile(outputs, dtype="<i4").reshape(len(images), num_classes + 1)
        return rows[:, :num_classes], rows[:, num_classes]


def check_int8_export(folder: str | os.PathLike, int8_model, fp32_model, images: np.ndarray,
                      labels: np.ndarray) -> dict:
    """The exported int8 engine on photos not used to calibrate it: its logits against the int8
    reference (bit for bit) and its top-1 against the fp32 model with the same weights."""
    import torch

    from squeezenet.export.c99.check import compile_check_binary, run_check_binary

    with tempfile.TemporaryDirectory() as scratch:
        binary = Path(scratch) / "check"
        compile_check_binary(folder, binary)
        logits = run_check_binary(binary, images, int8_model.network.num_classes)
    reference = int8_model(images)
    with torch.no_grad():
        fp32 = fp32_model(torch.from_numpy(images)).numpy()
    return {
        "c_checked_with": f"gcc {' '.join(STRICT_FLAGS)}",
        "compared_images": len(images),
        "c_logits_bit_identical_to_int8_reference": bool(np.array_equal(logits.view(np.uint32),
                                                                        reference.view(np.uint32))),
        "top1_agreement_with_fp32": float((logits.argmax(1) == fp32.argmax(1)).mean()),
        "top1_fp32": float((fp32.argmax(1) == labels).mean()),
        "top1_int8": float((logits.argmax(1) == labels).mean()),
    }
