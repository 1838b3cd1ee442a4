"""Run a firmware image in the unicorn emulator (QEMU's Cortex-M7) with only flash and the RAM budget mapped.

Nothing else is mapped, so a read or write past the RAM budget (a stack overflow, a buffer the linker
did not place) faults instead of succeeding, and becomes a one-line ValueError naming the address.
The Cortex-M7's FPU is reachable without mapping the System Control Space: unicorn handles the
CPACR write of the reset handler (0xE000ED88) inside the CPU model.

Instructions are counted per translated block, not per instruction: a block hook counts how often
each block start address runs, and each block's instruction count is found once by decoding Thumb-2
lengths (a halfword whose top five bits are 0b11101, 0b11110 or 0b11111 starts a 32-bit instruction).
The hook is a few lines of C built with the host compiler: blocks here average a handful of
instructions, so a Python block hook would dominate the run time (measured: over 6 minutes for one
CIFAR inference, against 16 seconds with the C hook). Latency is estimated at one instruction per cycle: a real M7 is
dual-issue but waits on flash and on multi-cycle float divides, so take it as an order of magnitude.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from squeezenet.export.c99.check import find_compiler
from squeezenet.export.mcu.build import STACK_PAINT, FirmwareBuild
from squeezenet.export.mcu.elf import read_elf

__all__ = ["CLOCK_HZ", "EmulationStats", "run_firmware", "thumb_instruction_count"]

CLOCK_HZ = 480_000_000  # the fastest Cortex-M7 parts (STM32H7)
_SYSTEM_CONTROL_PAGE = 0xE000E000  # holds CPACR (0xE000ED88)
_TIMEOUT_SECONDS = 1800  # a firmware that never reaches its breakpoint is stopped after this


@dataclass(frozen=True)
class EmulationStats:
    instructions: list[int]  # per image, from the call of the engine's entry point to its return
    stack_high_water: int  # bytes, deepest over all images
    stack_bytes: int  # bytes available to the stack
    emulation_seconds: list[float]  # wall time per image on this host

    @property
    def instructions_per_inference(self) -> int:
        return max(self.instructions)

    @property
    def estimated_ms(self) -> float:
        """Milliseconds per inference at CLOCK_HZ, assuming one instruction per cycle."""
        return 1000.0 * self.instructions_per_inference / CLOCK_HZ


def thumb_instruction_count(code: bytes) -> int:
    """Number of Thumb-2 instructions in ``code`` (a whole number of instructions)."""
    count = position = 0
    while position + 1 < len(code):
        first = code[position] | (code[position + 1] << 8)
        position += 4 if (first >> 11) in (0b11101, 0b11110, 0b11111) else 2
        count += 1
    return count


class _BlockCounter:
    """Executions per block start address, counted by the UC_HOOK_BLOCK hook of templates/block_counter.c."""

    def __init__(self, emulator, unicorn, build: FirmwareBuild):
        self.origin, self.emulator = build.flash_origin, emulator
        self.hits = np.zeros(build.flash_bytes // 2, dtype=np.uint64)
        self.sizes = np.zeros(build.flash_bytes // 2, dtype=np.uint32)
        self.at_start = self.hits.copy()
        self.instruction_counts: dict[int, int] = {}  # per block index, decoded once
        library, engine_library = _native_counter_library(build.elf.parent), _unicorn_library()
        if engine_library is None:
            raise ValueError("this unicorn binding does not expose libunicorn: pip install 'unicorn>=2.0,<3'")
        self.state = _CounterState(self.origin, len(self.hits), self.hits.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)),
                                   self.sizes.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)), 0)
        self.callback = ctypes.cast(library.squeezenet_count_block, ctypes.c_void_p)
        self.library = library  # keeps the shared object loaded while the hook exists
        handle = ctypes.c_size_t()
        status = engine_library.uc_hook_add(emulator._uch, ctypes.byref(handle), unicorn.UC_HOOK_BLOCK,
                                                   self.callback, ctypes.cast(ctypes.pointer(self.state), ctypes.c_void_p),
                                                   ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status != unicorn.UC_ERR_OK:
            raise ValueError(f"unicorn refused the block hook: {unicorn.UcError(status)}")

    def reset(self) -> None:
        self.hits[:] = 0
        self.at_start[:] = 0

    def mark_start(self) -> None:
        self.at_start[:] = self.hits

    def instructions_since_start(self) -> int:
        total = 0
        for index in np.flatnonzero(self.hits).tolist():
            if index not in self.instruction_counts:
                code = self.emulator.mem_read(self.origin + 2 * index, int(self.sizes[index]))
                self.instruction_counts[index] = thumb_instruction_count(bytes(code))
            total += int(self.hits[index] - self.at_start[index]) * self.instruction_counts[index]
        return total


class _CounterState(ctypes.Structure):
    _fields_ = [("flash_origin", ctypes.c_uint64), ("halfwords", ctypes.c_uint64),
                ("hits", ctypes.POINTER(ctypes.c_uint64)), ("sizes", ctypes.POINTER(ctypes.c_uint32)),
                ("outside", ctypes.c_uint64)]


def _native_counter_library(folder: Path) -> ctypes.CDLL:
    """templates/block_counter.c built with the host compiler into ``folder``."""
    compiler = find_compiler()
    if compiler is None:
        raise ValueError("no host C compiler for the emulator's block counter (set CC, or install gcc)")
    source, library = folder / "block_counter.c", folder / "block_counter.so"
    source.write_text(resources.files("squeezenet.export.mcu").joinpath("templates", "block_counter.c").read_text())
    result = subprocess.run([compiler, "-std=c99", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", str(source), "-o",
                             str(library)], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise ValueError(f"the block counter does not compile: {(result.stderr.strip().splitlines() or ['?'])[0]}")
    return ctypes.CDLL(str(library))


def _unicorn_library():
    """The ctypes handle of libunicorn inside the Python binding (its name moved in unicorn 2.1)."""
    for module_name, attribute in (("unicorn.unicorn_py3.unicorn", "uclib"), ("unicorn.unicorn", "_uc")):
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue
    return None


def _unicorn():
    if importlib.util.find_spec("unicorn") is None:
        raise ValueError("unicorn not found: pip install 'squeezenet[mcu]'")
    import unicorn
    import unicorn.arm_const as arm

    return unicorn, arm


def _firmware_images(build: FirmwareBuild, images: np.ndarray) -> np.ndarray:
    """``images`` as the firmware takes them: float32, or int8 (float ones quantized) for an int8 engine."""
    int8 = build.input_kind == "int8"
    if int8 and np.asarray(images).dtype != np.int8:
        from squeezenet.int8.reference import quantize_input

        images = quantize_input(images, build.input_scale, build.input_zero_point)
    images = np.ascontiguousarray(images, dtype=np.int8 if int8 else "<f4")
    if images.ndim != 4 or images[0].size != build.input_floats:
        raise ValueError(f"images must be [N, C, H, W] with C*H*W = {build.input_floats}, got shape {images.shape}")
    return images


def _check_memory_layout(build: FirmwareBuild) -> None:
    """Flash and RAM in whole pages, and every exchange buffer inside the RAM that will be mapped."""
    if build.ram_bytes % 0x1000 or build.flash_bytes % 0x1000:
        raise ValueError(f"unicorn maps whole 4 KiB pages: RAM {build.ram_bytes} and flash {build.flash_bytes} "
                         "bytes must be multiples of 4096")
    int8 = build.input_kind == "int8"
    for name in ("input_slot", "sums", "status", "done") if int8 else ("input", "logits", "status", "done"):
        if not build.ram_origin <= build.symbols[name] < build.ram_origin + build.ram_bytes:
            raise ValueError(f"the firmware's {name} buffer at 0x{build.symbols[name]:08X} is outside its RAM "
                             f"0x{build.ram_origin:08X}+{build.ram_bytes}")


def _mapped_emulator(build: FirmwareBuild, unicorn, arm):
    """A Cortex-M7 with only flash, the RAM budget and the page holding CPACR mapped."""
    emulator = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    emulator.ctl_set_cpu_model(arm.UC_CPU_ARM_CORTEX_M7)
    emulator.mem_map(build.flash_origin, build.flash_bytes, unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC)
    emulator.mem_map(build.ram_origin, build.ram_bytes, unicorn.UC_PROT_ALL)
    # unicorn has no System Control Space device: the reset handler's CPACR write needs this page.
    emulator.mem_map(_SYSTEM_CONTROL_PAGE, 0x1000, unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE)
    return emulator


def _load_flash(emulator, build: FirmwareBuild) -> tuple[int, int]:
    """Write the ELF's flash sections; returns (initial stack pointer, reset handler) from its vector table."""
    elf = read_elf(build.elf)
    for name, section in elf.sections.items():
        if section.has_bytes and build.flash_origin <= section.load_address < build.flash_origin + build.flash_bytes:
            emulator.mem_write(section.load_address, elf.section_bytes(name))
    initial_stack, reset = np.frombuffer(elf.section_bytes(".vectors")[:8], dtype="<u4").tolist()
    return initial_stack, reset


class _Hooks:
    """What the emulator reports back while it runs: a bad access or a CPU exception becomes one
    message in ``faults`` (the run then stops), and when run_inference starts the int8 image in
    ``pending`` is written into the engine's input slot and the block counter marks its start."""

    def __init__(self, emulator, build: FirmwareBuild, counter: _BlockCounter, unicorn, arm):
        self.build, self.counter, self.unicorn, self.arm = build, counter, unicorn, arm
        self.faults: list[str] = []
        self.pending: list[bytes] = []  # int8: the image the "camera" delivers once startup has zeroed .bss
        emulator.hook_add(unicorn.UC_HOOK_MEM_INVALID, self.on_bad_access)
        emulator.hook_add(unicorn.UC_HOOK_INTR, self.on_interrupt)
        # One instrumented address: the blocks counted before it are the reset handler's, not the inference's.
        inference = build.symbols["run_inference"] & ~1
        emulator.hook_add(unicorn.UC_HOOK_CODE, self.on_inference, begin=inference, end=inference)

    def on_bad_access(self, _, access, address, size, __, ___):
        unicorn, build = self.unicorn, self.build
        kind = "write" if access in (unicorn.UC_MEM_WRITE_UNMAPPED, unicorn.UC_MEM_WRITE_PROT) else "read"
        where = f"firmware {kind} of {size} bytes at 0x{address:08X}"
        if access in (unicorn.UC_MEM_READ_UNMAPPED, unicorn.UC_MEM_WRITE_UNMAPPED, unicorn.UC_MEM_FETCH_UNMAPPED):
            self.faults.append(f"{where}, outside flash 0x{build.flash_origin:08X}+{build.flash_bytes} "
                               f"and RAM 0x{build.ram_origin:08X}+{build.ram_bytes}")
        else:
            self.faults.append(f"{where} is not allowed there (flash is read-only)")
        return False

    def on_interrupt(self, uc, number, _):
        if number != 7:  # EXCP_BKPT: the harness is done; anything else is a fault the chip would take
            self.faults.append(f"firmware raised CPU exception {number} at 0x{uc.reg_read(self.arm.UC_ARM_REG_PC):08X}")
        uc.emu_stop()

    def on_inference(self, uc, *_):
        build = self.build
        if self.pending:
            slot = int(np.frombuffer(uc.mem_read(build.symbols["input_slot"], 4), "<u4")[0])
            if not build.ram_origin <= slot <= build.ram_origin + build.ram_bytes - len(self.pending[0]):
                self.faults.append(f"the engine's input slot 0x{slot:08X} is outside RAM "
                                   f"0x{build.ram_origin:08X}+{build.ram_bytes}")
                uc.emu_stop()
                return
            uc.mem_write(slot, self.pending.pop())
        self.counter.mark_start()


def _run_once(emulator, build: FirmwareBuild, hooks: _Hooks, image: np.ndarray, initial_stack: int, reset: int,
              unicorn, arm) -> float:
    """Power the chip on with ``image`` waiting for it and run to the harness's breakpoint; returns the wall time."""
    emulator.mem_write(build.ram_origin, bytes(build.ram_bytes))
    if build.input_kind == "int8":
        hooks.pending[:] = [image.tobytes()]
    else:
        emulator.mem_write(build.symbols["input"], image.tobytes())
    emulator.reg_write(arm.UC_ARM_REG_SP, initial_stack)
    hooks.counter.reset()
    hooks.faults.clear()
    start = time.perf_counter()
    try:
        emulator.emu_start(reset | 1, build.flash_origin + build.flash_bytes, timeout=_TIMEOUT_SECONDS * 1_000_000)
    except unicorn.UcError as error:
        raise ValueError(hooks.faults[0] if hooks.faults else f"emulation failed: {error}") from None
    seconds = time.perf_counter() - start
    if hooks.faults:
        raise ValueError(hooks.faults[0])
    return seconds


def _read_outputs(emulator, build: FirmwareBuild) -> np.ndarray:
    """The finished inference's logits (float32) or int32 sums; ValueError when the harness did not finish."""
    int8 = build.input_kind == "int8"
    status, done = np.frombuffer(emulator.mem_read(build.symbols["status"], 4), "<i4")[0], \
        np.frombuffer(emulator.mem_read(build.symbols["done"], 4), "<i4")[0]
    if done != 1 or (status < 0 if int8 else status != 0):
        raise ValueError(f"firmware did not finish an inference (the engine returned {status}, done flag {done})")
    if int8:
        return np.frombuffer(emulator.mem_read(build.symbols["sums"], 4 * build.num_classes), "<i4")
    return np.frombuffer(emulator.mem_read(build.symbols["logits"], 4 * build.num_classes), "<f4")


def _stack_words(build: FirmwareBuild) -> int:
    return (build.symbols["stack_top"] - build.symbols["stack_limit"]) // 4


def _stack_high_water(emulator, build: FirmwareBuild) -> int:
    """Bytes of stack used: from the top down to the deepest word that no longer holds the startup's paint."""
    stack_words = _stack_words(build)
    stack = np.frombuffer(emulator.mem_read(build.symbols["stack_limit"], 4 * stack_words), "<u4")
    untouched = int(np.argmax(stack != STACK_PAINT)) if (stack != STACK_PAINT).any() else stack_words
    return 4 * (stack_words - untouched)


def run_firmware(build: FirmwareBuild, images: np.ndarray) -> tuple[np.ndarray, EmulationStats]:
    """The firmware's outputs for images [N, C, H, W], one reset per image, and the stats.

    Float engine: float32 images in, float32 logits [N, classes] out. int8 engine (build.input_kind
    "int8"): int8 images, or float32 ones quantized here as `squeezenet.int8.reference.quantize_input`
    does with the export's scale and zero point, each written into the engine's input slot when
    run_inference starts (after the startup code zeroed .bss, where the slot is); out come the raw
    int32 sums [N, classes] (logit = sum * SQUEEZENET_LOGITS_SCALE, left to the caller).

    One emulator serves every image: between images RAM is zeroed and the registers reset, which
    is the state a power-on gives (cheaper than a new emulator, and the translated code is kept)."""
    images = _firmware_images(build, images)
    _check_memory_layout(build)
    unicorn, arm = _unicorn()
    emulator = _mapped_emulator(build, unicorn, arm)
    initial_stack, reset = _load_flash(emulator, build)
    counter = _BlockCounter(emulator, unicorn, build)
    hooks = _Hooks(emulator, build, counter, unicorn, arm)
    outputs, instructions, seconds, high_water = [], [], [], 0
    for image in images:
        seconds.append(_run_once(emulator, build, hooks, image, initial_stack, reset, unicorn, arm))
        outputs.append(_read_outputs(emulator, build))
        instructions.append(counter.instructions_since_start())
        high_water = max(high_water, _stack_high_water(emulator, build))
    stats = EmulationStats(instructions, high_water, 4 * _stack_words(build), seconds)
    return np.stack(outputs).astype(np.int32 if build.input_kind == "int8" else np.float32), stats
