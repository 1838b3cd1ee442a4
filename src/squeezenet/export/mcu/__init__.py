"""The exported C engine on a small processor: a Cortex-M7 firmware image, built and emulated.

``build_firmware`` cross-compiles an export's model.c with a bare-metal harness (templates/harness.c)
and a linker script whose RAM region is exactly the budget (templates/firmware.ld); ``run_firmware``
runs it in unicorn with only flash and that RAM mapped and returns the logits with the instruction
count and stack depth; ``read_elf`` is the ELF32 reader both use.
"""

from squeezenet.export.mcu.build import (
           FirmwareBuild,
           build_firmware,
           input_quantization,
           model_constants,
           ram_budget,
)
from squeezenet.export.mcu.elf import ElfFile, read_elf
from squeezenet.export.mcu.emulator import (
           CLOCK_HZ,
           EmulationStats,
           run_firmware,
           thumb_instruction_count,
)

__all__ = ["CLOCK_HZ", "ElfFile", "EmulationStats", "FirmwareBuild", "build_firmware", "input_quantization",
           "model_constants", "ram_budget", "read_elf", "run_firmware", "thumb_instruction_count"]
