"""``squeezenet export --format c --target cortex-m7``: the exported folder's firmware, built, placed
beside the C files, and (on photos) emulated and compared bit for bit with the host build.

The firmware goes into ``<folder>/cortex-m7/`` (``firmware.elf``, ``firmware.ld``, ``harness.c``) through
the same all-or-nothing folder writer as the export, so a failed build leaves nothing half-written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from squeezenet.export.mcu.build import build_firmware, ram_budget
from squeezenet.export.mcu.emulator import CLOCK_HZ, run_firmware

__all__ = ["TARGETS", "FIRMWARE_FOLDER", "build_target"]

TARGETS = ("host", "cortex-m7")
FIRMWARE_FOLDER = "cortex-m7"
# The float settings the host parity build needs to match the firmware bit for bit (no fused multiply-add).
HOST_FLAGS = ("-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Werror")


def build_target(folder: str | os.PathLike, *, ram_bytes: int | None = None, flash_bytes: int = 2 * 1024 * 1024,
                 images: np.ndarray | None = None) -> dict:
    """Build the Cortex-M7 firmware of an exported C folder; with ``images`` also emulate it on them.

    ``ram_bytes`` is the RAM region (default: what the export's static buffers, the exchange buffers
    and a 4 KiB stack need, rounded up to whole 4 KiB pages). Raises ValueError naming the section and
    the bytes over when the model does not fit that RAM or ``flash_bytes``.
    """
    from squeezenet.export.output_folder import write_files

    folder = Path(folder)
    budget = ram_bytes if ram_bytes is not None else ram_budget(folder)
    with tempfile.TemporaryDirectory(prefix="squeezenet-firmware-") as scratch:
        build = build_firmware(folder, scratch, ram_bytes=budget, flash_bytes=flash_bytes)
        result = {
            "target": "cortex-m7",
            "firmware": str(folder / FIRMWARE_FOLDER / "firmware.elf"),
            "flash_budget_bytes": build.flash_bytes,
            "flash_used_bytes": build.flash_used,
            "ram_budget_bytes": build.ram_bytes,
            "static_ram_bytes": build.static_ram,
            "stack_bytes": build.stack_bytes,
            "sections": build.section_bytes,
        }
        if images is not None:
            result.update(_emulate(folder, build, images, Path(scratch)))
        files = {name: (Path(scratch) / name).read_bytes() for name in ("firmware.elf", "firmware.ld", "harness.c")}
    write_files(folder / FIRMWARE_FOLDER, files)
    return result


def _emulate(folder: Path, build, images: np.ndarray, scratch: Path) -> dict:
    """Logits of the emulated firmware against the same C built for this host with the same float rules;
    for the int8 engine, its int32 sums (in-place entry) against the host build's squeezenet_predict_int8."""
    binary = scratch / "host-predict"
    if build.input_kind == "int8":
        from squeezenet.export.c99_int8.check import (
            compile_int8_check_binary,
            run_int8_check_binary,
        )
        from squeezenet.int8.reference import quantize_input

        quantized = quantize_input(images, build.input_scale, build.input_zero_point)
        logits, stats = run_firmware(build, quantized)
        compile_int8_check_binary(folder, binary, HOST_FLAGS)
        host, _ = run_int8_check_binary(binary, quantized, build.num_classes)
    else:
        from squeezenet.export.c99.check import compile_check_binary, run_check_binary

        logits, stats = run_firmware(build, images)
        compile_check_binary(folder, binary, HOST_FLAGS)
        host = run_check_binary(binary, images, build.num_classes)
    identical = bool(np.array_equal(logits.view(np.uint32), host.view(np.uint32)))
    return {
        "emulated_images": len(images),
        "emulated_logits_bit_identical_to_host": identical,
        "emulated_output": "int32 sums (in-place int8 entry)" if build.input_kind == "int8" else "float32 logits",
        "instructions_per_inference": stats.instructions_per_inference,
        "stack_high_water_bytes": stats.stack_high_water,
        "estimated_ms_at_480_mhz": round(stats.estimated_ms, 1),
        "estimate_assumes": f"1 instruction per cycle at {CLOCK_HZ / 1e6:.0f} MHz",
    }
