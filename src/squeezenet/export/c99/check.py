"""Compile an exported C engine with the tests' strict flags and compare it with PyTorch on images."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from squeezenet.export.c99.templates import kernel_source, render

__all__ = ["STRICT_FLAGS", "compile_check_binary", "run_check_binary", "find_compiler", "harness_source"]

STRICT_FLAGS = ("-std=c99", "-O2", "-Wall", "-Werror")


def find_compiler() -> str | None:
    """``$CC``, else gcc, else cc; None when there is none."""
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")


def harness_source(image_step: str) -> str:
    """A parity harness: templates/check_main.c around ``image_step``, the C that declares the
    ``image`` buffer and ``predict_and_write(FILE *out)`` for one engine."""
    return render("check_main.c", image_step=image_step)


def compile_check_binary(folder: str | os.PathLike, binary: str | os.PathLike, flags: tuple[str, ...] = STRICT_FLAGS,
                         *, harness: tuple[str, str] | None = None) -> None:
    """Build ``folder``'s model.c with a parity harness into ``binary``: the float one (float images in,
    logits out), or ``harness`` = (file name, C source from `harness_source`) for another one."""
    compiler = find_compiler()
    if compiler is None:
        raise ValueError("no C compiler found (set CC, or install gcc)")
    folder = Path(folder)
    name, source = harness or ("check_main.c", harness_source(kernel_source("check_float_image.c")))
    harness_path = Path(binary).with_name(name)
    harness_path.write_text(source)
    result = subprocess.run([compiler, *flags, "-I", str(folder), str(folder / "model.c"), str(harness_path), "-o",
                             str(binary)], capture_output=True, text=True)
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["no message"])[0]
        raise ValueError(f"the generated C does not compile with {' '.join(flags)}: {first}")


def run_check_binary(binary: str | os.PathLike, images: np.ndarray, num_classes: int) -> np.ndarray:
    """Logits [N, num_classes] of the compiled engine for images [N, C, H, W]."""
    with tempfile.TemporaryDirectory() as scratch:
        inputs, outputs = Path(scratch) / "images.bin", Path(scratch) / "logits.bin"
        np.ascontiguousarray(images, dtype="<f4").tofile(inputs)
        subprocess.run([str(binary), str(inputs), str(outputs)], check=True)
        return np.fromfile(outputs, dtype="<f4").reshape(len(images), num_classes)
