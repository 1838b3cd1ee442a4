"""Cross-compile an exported C engine and a bare-metal harness into a Cortex-M7 firmware image.

``zig cc`` (clang and lld, from the ``ziglang`` wheel) builds for ``thumb-freestanding-eabihf`` with
the single- and double-precision FPU of the M7 (FPv5-D16). The linker script is generated per build:
flash holds code and the compressed weights, RAM is exactly the budget asked for, so a model whose
static buffers do not fit fails at link time rather than on the chip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from squeezenet import __version__
from squeezenet.export.mcu.elf import read_elf

__all__ = ["CORTEX_M7_FLAGS", "STACK_PAINT", "FirmwareBuild", "build_firmware", "input_quantization",
           "model_constants", "ram_budget"]

# -ffp-contract=off: no fused multiply-add, so every product is rounded as on the host build.
CORTEX_M7_FLAGS = ("-target", "thumb-freestanding-eabihf", "-mcpu=cortex_m7+fp_armv8d16", "-std=c99", "-O2",
                   "-ffp-contract=off", "-ffreestanding", "-nostdlib", "-ffunction-sections", "-fdata-sections",
                   "-Wall", "-Werror")
STACK_PAINT = 0x5AC0FFEE
_HARNESS_BYTES = 64  # its two status words and the alignment padding of the sections
_FLOAT_DEFINE = re.compile(r"#define SQUEEZENET_INPUT_SCALE \(([-+0-9.eE]+)f?\)")
_ZERO_POINT_DEFINE = re.compile(r"#define SQUEEZENET_INPUT_ZERO_POINT \((-?\d+)\)")
_OVERFLOW = re.compile(r"section '([^']+)' will not fit in region '([^']+)': overflowed by (\d+) bytes")


@dataclass(frozen=True)
class FirmwareBuild:
    """One linked firmware image: where it is, what it occupies, and where its exchange buffers are.

    ``input_kind`` "float": float input and logits buffers (symbols input, logits). "int8": the int8
    engine's in-place entry (symbols input_slot, the word holding the address of the engine's input
    slot, and sums, the int32 output); images are quantized with input_scale and input_zero_point."""

    elf: Path
    linker_script: Path
    flash_origin: int
    flash_bytes: int  # the budget
    ram_origin: int
    ram_bytes: int  # the budget: the whole RAM region the emulator maps
    input_floats: int
    num_classes: int
    section_bytes: dict[str, int]  # .vectors, .text, .rodata, .data, .bss, .noinit, .stack (reserved)
    symbols: dict[str, int]  # input, logits (or input_slot, sums), status, done, stack_limit, stack_top, reset, run_inference
    command: list[str] = field(default_factory=list)
    input_kind: str = "float"
    input_scale: float = 0.0  # int8 only: q = clamp(round(x / input_scale) + input_zero_point, -128, 127)
    input_zero_point: int = 0

    @property
    def flash_used(self) -> int:
        """Bytes of flash: vector table, code, constants (the weights) and .data's initial values."""
        return sum(self.section_bytes.get(name, 0) for name in (".vectors", ".text", ".rodata", ".data"))

    @property
    def static_ram(self) -> int:
        """Bytes of RAM below the stack: .data, .bss, the exchange buffers and their alignment padding."""
        return self.symbols["stack_limit"] - self.ram_origin

    @property
    def stack_bytes(self) -> int:
        """Bytes between the end of the static buffers and the top of RAM: all of it is stack."""
        return self.symbols["stack_top"] - self.symbols["stack_limit"]


def _template(name: str) -> str:
    return resources.files("squeezenet.export.mcu").joinpath("templates", name).read_text(encoding="utf-8")


def model_constants(c_folder: str | os.PathLike) -> dict[str, int]:
    """The integer ``#define SQUEEZENET_*`` values of an export's model.h (sizes, RAM bytes)."""
    header = Path(c_folder) / "model.h"
    if not header.is_file():
        raise FileNotFoundError(f"{header} not found: run squeezenet export --format c first")
    return {name: int(value) for name, value in re.findall(r"#define SQUEEZENET_(\w+) (\d+)\b", header.read_text())}


def input_quantization(c_folder: str | os.PathLike) -> tuple[float, int]:
    """(scale, zero point) of an int8 export's input, read back from its model.h."""
    text = (Path(c_folder) / "model.h").read_text()
    scale, zero_point = _FLOAT_DEFINE.search(text), _ZERO_POINT_DEFINE.search(text)
    if scale is None or zero_point is None:
        raise ValueError(f"{Path(c_folder) / 'model.h'} states no input quantization: export with --precision int8")
    return float(np.float32(scale.group(1))), int(zero_point.group(1))


def ram_budget(c_folder: str | os.PathLike, *, stack_bytes: int = 4096) -> int:
    """The smallest whole-KiB RAM (in 4 KiB pages, what the emulator maps) that holds the export's
    static buffers (SQUEEZENET_RAM_BYTES), the harness's exchange buffers and ``stack_bytes``: float
    input and logits, or for the int8 engine only the int32 sums (its input slot is in the arena)."""
    constants = model_constants(c_folder)
    exchange = 4 * (constants["NUM_CLASSES"] if constants.get("INT8") else constants["INPUT_FLOATS"] + constants["NUM_CLASSES"])
    needed = constants["RAM_BYTES"] + exchange + _HARNESS_BYTES + stack_bytes
    return -(-needed // 4096) * 4096


def _zig() -> list[str]:
    if importlib.util.find_spec("ziglang") is None:
        raise ValueError("zig not found: pip install 'squeezenet[mcu]'")
    return [sys.executable, "-m", "ziglang", "cc"]


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    if result.returncode == 0:
        return
    message = result.stderr + result.stdout
    overflows = _OVERFLOW.findall(message)
    if overflows:
        # lld reports every section from the first that spills over; the last carries the total.
        first_section, region, _ = overflows[0]
        raise ValueError(f"firmware does not fit {region}: section '{first_section}' onward overflows it by "
                         f"{overflows[-1][2]} bytes")
    first = next((line.strip() for line in message.splitlines() if "error" in line), message.strip()[:200] or "no message")
    raise ValueError(f"{what} failed: {first}")


def build_firmware(c_folder: str | os.PathLike, out_dir: str | os.PathLike, *, ram_bytes: int,
                   flash_bytes: int = 2 * 1024 * 1024, flash_origin: int = 0x08000000, ram_origin: int = 0x20000000,
                   stack_bytes: int = 4096, extra_flags: tuple[str, ...] = ()) -> FirmwareBuild:
    """Compile ``c_folder``'s model.c with the bare-metal harness and link it for a Cortex-M7.

    ``ram_bytes`` is the whole RAM: .data, .bss, the exchange buffers (float input and logits, or the
    int8 engine's sums when model.h defines SQUEEZENET_INT8: see templates/harness.c), then a stack of at
    least ``stack_bytes`` up to the top. Raises ValueError naming the section and the bytes over when
    that does not fit (or when flash is too small for the weights)."""
    if ram_bytes <= 0 or flash_bytes <= 0 or stack_bytes < 0:
        raise ValueError(f"ram_bytes and flash_bytes must be positive, got {ram_bytes} and {flash_bytes}")
    c_folder, out_dir = Path(c_folder), Path(out_dir)
    constants = model_constants(c_folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    banner = (f"Generated by squeezenet {__version__} (squeezenet.export.mcu) for a Cortex-M7 with FPU: do not edit.\n"
              f" * Model: {c_folder.resolve() / 'model.c'}")
    (out_dir / "include").mkdir(exist_ok=True)
    (out_dir / "include" / "string.h").write_text(_template("string.h"))
    (out_dir / "harness.c").write_text(Template(_template("harness.c")).substitute(banner=banner,
                                                                                   stack_paint=f"0x{STACK_PAINT:08X}"))
    script = out_dir / "firmware.ld"
    script.write_text(Template(_template("firmware.ld")).substitute(
        banner=banner, flash_origin=f"0x{flash_origin:08X}", flash_bytes=flash_bytes, ram_origin=f"0x{ram_origin:08X}",
        ram_bytes=ram_bytes, stack_bytes=stack_bytes))

    zig = _zig()
    flags = [*CORTEX_M7_FLAGS, *extra_flags, "-isystem", str(out_dir / "include"), "-I", str(c_folder)]
    model_object, harness_object, elf = out_dir / "model.o", out_dir / "harness.o", out_dir / "firmware.elf"
    _run([*zig, *flags, "-c", str(c_folder / "model.c"), "-o", str(model_object)], "compiling model.c for the Cortex-M7")
    _run([*zig, *flags, "-fno-builtin", "-c", str(out_dir / "harness.c"), "-o", str(harness_object)],
         "compiling the harness")
    link = [*zig, *CORTEX_M7_FLAGS, *extra_flags, "-T", str(script), "-Wl,--gc-sections", str(model_object),
            str(harness_object), "-o", str(elf)]
    _run(link, "linking the firmware")

    image = read_elf(elf)
    int8 = bool(constants.get("INT8"))
    exchange = ({"input_slot": "squeezenet_mcu_input_slot", "sums": "squeezenet_mcu_sums"} if int8
                else {"input": "squeezenet_mcu_input", "logits": "squeezenet_mcu_logits"})
    names = {**exchange, "status": "squeezenet_mcu_status", "done": "squeezenet_mcu_done", "stack_limit": "__stack_limit",
             "stack_top": "__stack_top", "reset": "squeezenet_mcu_reset", "run_inference": "run_inference"}
    scale, zero_point = input_quantization(c_folder) if int8 else (0.0, 0)
    return FirmwareBuild(
        elf=elf, linker_script=script, flash_origin=flash_origin, flash_bytes=flash_bytes, ram_origin=ram_origin,
        ram_bytes=ram_bytes, input_floats=constants["INPUT_FLOATS"], num_classes=constants["NUM_CLASSES"],
        section_bytes={name: section.size for name, section in image.sections.items()},
        symbols={key: image.symbols[symbol] for key, symbol in names.items()},
        command=[*zig[1:], *flags, "(model.c, harness.c)", "-T", str(script)],
        input_kind="int8" if int8 else "float", input_scale=scale, input_zero_point=zero_point)
