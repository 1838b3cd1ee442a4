"""The exported engine on an emulated Cortex-M7: same logits as the host build, to the bit, in the RAM it claims.

The firmware layout is checked on a committed CIFAR model (32x32); the emulation runs a narrow
32x32 SqueezeNet of the same layout (Fires a sixteenth as wide: a few million instructions per image,
where the committed model takes about 313 million) on two real photos, so it stays a check of seconds.
The committed model's emulation and the ImageNet model are left to benchmarks/bench_small_processor.py.
"""

from __future__ import annotations

import importlib.util
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from squeezenet.export.c99.check import compile_check_binary, run_check_binary
from squeezenet.export.c99.export import export_c
from squeezenet.export.photos import photo_batch

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or importlib.util.find_spec("ziglang") is None
    or importlib.util.find_spec("unicorn") is None, reason="needs gcc and the mcu extra (ziglang, unicorn)")

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "results" / "cifar10" / "squeezenet_cifar_dc6bit_huffman.sqz"
PHOTOS = ROOT.parent / "shared" / "data" / "cifar10" / "train"
# The host build of the parity harness with the firmware's float settings: no fused multiply-add.
HOST_FLAGS = ("-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Werror")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    if not WEIGHTS.is_file() or not PHOTOS.is_dir():
        pytest.skip("needs the committed CIFAR model and the CIFAR photos")
    folder = tmp_path_factory.mktemp("c")
    export_c(WEIGHTS, folder, command=f"squeezenet export --format c --weights {WEIGHTS} --out {folder}")
    return folder


@pytest.fixture(scope="module")
def firmware(exported, tmp_path_factory):
    from squeezenet.export.mcu import build_firmware, ram_budget

    return build_firmware(exported, tmp_path_factory.mktemp("firmware"), ram_bytes=ram_budget(exported))


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    """(export folder, firmware) of a narrow CIFAR SqueezeNet with seeded weights: real arithmetic,
    a few million instructions per image."""
    import torch

    from squeezenet.export.mcu import build_firmware, ram_budget
    from squeezenet.models import squeezenet_cifar
    from squeezenet.weights import save_checkpoint

    torch.manual_seed(0)
    model = squeezenet_cifar(base_e=8, incr_e=8).eval()
    folder = tmp_path_factory.mktemp("narrow")
    save_checkpoint(folder / "narrow.pth", model)
    export_c(folder / "narrow.pth", folder / "c", command="squeezenet export --format c --weights narrow.pth")
    return folder / "c", build_firmware(folder / "c", folder / "firmware", ram_bytes=ram_budget(folder / "c"))


def test_thumb_instruction_lengths():
    from squeezenet.export.mcu import thumb_instruction_count

    # movs r0, #1 (16-bit); movw r0, #4 (32-bit, 0xF240); bl (32-bit, 0xF000 0xF80E); bx lr (16-bit)
    code = struct.pack("<6H", 0x2001, 0xF240, 0x0004, 0xF000, 0xF80E, 0x4770)
    assert thumb_instruction_count(code) == 4
    # ldr.w (first halfword 0xF8D0) and a 0b11101 prefix (0xE92D push.w) are 32-bit too
    assert thumb_instruction_count(struct.pack("<4H", 0xF8D0, 0x0000, 0xE92D, 0x4000)) == 2
    # b (16-bit, 0xE7FE: top bits 0b11100) is not a prefix
    assert thumb_instruction_count(struct.pack("<2H", 0xE7FE, 0xE7FE)) == 2


def test_firmware_layout(firmware, exported):
    from squeezenet.export.mcu import model_constants, read_elf

    constants = model_constants(exported)
    sections = firmware.section_bytes
    # Weights in flash, buffers in RAM, nothing else in RAM that the export did not announce.
    assert sections[".rodata"] >= constants["WEIGHT_BYTES"]
    assert firmware.flash_used < firmware.flash_bytes
    assert constants["RAM_BYTES"] <= sections[".bss"] + sections[".data"] <= constants["RAM_BYTES"] + 64
    assert sections[".noinit"] >= 4 * (constants["INPUT_FLOATS"] + constants["NUM_CLASSES"])
    assert 0 <= firmware.static_ram - (sections[".data"] + sections[".bss"] + sections[".noinit"]) < 16  # padding
    assert firmware.static_ram + firmware.stack_bytes == firmware.ram_bytes
    assert firmware.symbols["stack_top"] == firmware.ram_origin + firmware.ram_bytes
    for name in ("input", "logits", "status"):
        assert firmware.ram_origin <= firmware.symbols[name] < firmware.symbols["stack_limit"]
    elf = read_elf(firmware.elf)
    initial_stack, reset = struct.unpack("<2I", elf.section_bytes(".vectors")[:8])
    assert initial_stack == firmware.symbols["stack_top"] and reset == firmware.symbols["reset"]
    assert reset & 1  # a Thumb address, as the M profile requires


def test_emulated_logits_are_bit_identical_to_the_host_build(narrow, tmp_path):
    from squeezenet.export.mcu import run_firmware

    exported, firmware = narrow
    images, _ = photo_batch(PHOTOS, "cifar", 32, 2)
    logits, stats = run_firmware(firmware, images)

    binary = tmp_path / "predict"
    compile_check_binary(exported, binary, HOST_FLAGS)
    host = run_check_binary(binary, images, firmware.num_classes)
    assert logits.shape == host.shape == (len(images), firmware.num_classes)
    assert np.array_equal(logits.view(np.uint32), host.view(np.uint32))
    assert not np.array_equal(logits[0], logits[1])  # two photos, two answers: the input did reach the chip

    # The same work per image (the engine has no data-dependent branches beyond ReLU) and a
    # measured stack that fits in what the linker left.
    assert stats.instructions[0] > 1_000_000
    assert abs(stats.instructions[0] - stats.instructions[1]) < stats.instructions[0] // 100
    assert 0 < stats.stack_high_water < stats.stack_bytes


def test_ram_budget_too_small_is_refused_in_one_line(exported, tmp_path):
    from squeezenet.export.mcu import build_firmware, ram_budget

    with pytest.raises(ValueError, match=r"^firmware does not fit RAM: section '\.[a-z]+' onward overflows it by \d+ bytes$"):
        build_firmware(exported, tmp_path, ram_bytes=ram_budget(exported) - 16 * 1024)


def test_flash_too_small_is_refused(exported, tmp_path):
    from squeezenet.export.mcu import build_firmware, ram_budget

    with pytest.raises(ValueError, match=r"^firmware does not fit FLASH"):
        build_firmware(exported, tmp_path, ram_bytes=ram_budget(exported), flash_bytes=256 * 1024)


def test_access_beyond_the_mapped_ram_faults_with_the_address(narrow):
    """Map 4 KiB less RAM than the firmware was linked for (less than its stack, so the buffers are still
    there): its first stack push lands past the end."""
    import dataclasses

    from squeezenet.export.mcu import run_firmware

    _, firmware = narrow
    shrunk = dataclasses.replace(firmware, ram_bytes=firmware.ram_bytes - 4096)
    images = np.zeros((1, 3, 32, 32), dtype=np.float32)
    top = firmware.symbols["stack_top"]
    with pytest.raises(ValueError, match=r"^firmware write of 4 bytes at 0x([0-9A-F]{8}), outside flash") as error:
        run_firmware(shrunk, images)
    address = int(error.value.args[0].split(" at 0x")[1][:8], 16)
    assert top - 4096 <= address < top


def test_cli_target_cortex_m7_builds_firmware_and_refuses_what_does_not_fit(cli, tmp_path):
    status, result = cli("export", "--format", "c", "--target", "cortex-m7", "--weights", WEIGHTS, "--out",
                         tmp_path / "small-ram", "--ram-bytes", 400_000, "--json")
    assert status == 2 and result["error"].endswith("firmware does not fit RAM: section '.bss' onward overflows "
                                                    "it by 478168 bytes")
    assert not (tmp_path / "small-ram").exists()  # nothing half-made is left
    status, result = cli("export", "--format", "c", "--target", "cortex-m7", "--weights", WEIGHTS, "--out",
                         tmp_path / "fits", "--json")
    assert status == 0 and (tmp_path / "fits" / "cortex-m7" / "firmware.elf").is_file()
    assert result["ram_budget_bytes"] % 4096 == 0 and result["static_ram_bytes"] < result["ram_budget_bytes"]
    assert result["flash_used_bytes"] > result["weight_bytes"]
    status, result = cli("export", "--format", "onnx", "--target", "cortex-m7", "--weights", WEIGHTS, "--out",
                         tmp_path / "m.onnx", "--json")
    assert status == 2 and "needs --format c" in result["error"]


def test_int8_engine_on_the_emulated_chip_matches_its_host_build_and_the_reference(cli, narrow, tmp_path):
    """`export --precision int8 --target cortex-m7` as a user runs it, on the narrow net: the firmware's
    logits equal the host build's to the bit (the CLI compares them), and those equal the int8
    reference engine's (compared here on the same photo)."""
    from conftest import cifar_slice

    from squeezenet.export.c99.check import compile_check_binary, run_check_binary
    from squeezenet.export.compressed import compressed_model
    from squeezenet.int8.reference import Int8Model

    photos = cifar_slice(tmp_path / "photos", per_class=3, from_end=True)
    weights = narrow[0].parent / "narrow.pth"
    status, result = cli("export", "--format", "c", "--precision", "int8", "--target", "cortex-m7", "--weights",
                         weights, "--out", tmp_path / "int8", "--calibration-data", photos, "--calibration-images", 10,
                         "--check-images", 6, "--emulate-images", 1, "--json")
    assert status == 0, cli.err
    assert result["emulated_logits_bit_identical_to_host"] is True
    assert result["c_logits_bit_identical_to_int8_reference"] is True
    assert result["static_ram_bytes"] <= result["ram_budget_bytes"] and result["ram_budget_bytes"] % 4096 == 0
    assert result["ram_bytes"] == sum(result["ram_buffers"].values())
    assert result["sections"][".rodata"] >= result["weight_bytes"]  # the entropy-coded weights, in flash
    # The host build of the int8 C against the reference engine calibrated on the same photos.
    compressed = compressed_model(weights)
    calibration, _ = photo_batch(photos, "cifar", 32, 10)
    reference = Int8Model.calibrated(compressed.spec, compressed.layers, calibration)
    images, _ = photo_batch(photos, "cifar", 32, 2, offset=1)
    compile_check_binary(tmp_path / "int8", tmp_path / "host", HOST_FLAGS)
    host = run_check_binary(tmp_path / "host", images, 10)
    assert np.array_equal(host.view(np.uint32), reference(images).view(np.uint32))


def test_int8_in_place_harness_writes_the_image_into_the_engine_and_matches_host_and_reference(narrow, tmp_path):
    """The int8 harness mode on the narrow net: no float buffers on the chip, the emulator writes the
    int8 image into the engine's own input slot, and the int32 sums equal the host build's
    squeezenet_predict_int8 and the reference's integer_logits."""
    from squeezenet.export.c99_int8.check import (
        compile_int8_check_binary,
        run_int8_check_binary,
    )
    from squeezenet.export.c99_int8.export import export_c_int8
    from squeezenet.export.compressed import compressed_model
    from squeezenet.export.mcu import (
        build_firmware,
        model_constants,
        ram_budget,
        run_firmware,
    )
    from squeezenet.int8.reference import Int8Model

    weights = narrow[0].parent / "narrow.pth"
    calibration, _ = photo_batch(PHOTOS, "cifar", 32, 8)
    compressed = compressed_model(weights)
    reference = Int8Model.calibrated(compressed.spec, compressed.layers, calibration)
    export_c_int8(weights, tmp_path / "c", calibration_images=calibration, command="test", compressed=compressed,
                  int8_model=reference)
    constants = model_constants(tmp_path / "c")
    budget = ram_budget(tmp_path / "c")
    assert budget == -(-(constants["RAM_BYTES"] + 4 * constants["NUM_CLASSES"] + 64 + 4096) // 4096) * 4096
    firmware = build_firmware(tmp_path / "c", tmp_path / "firmware", ram_bytes=budget)
    assert firmware.input_kind == "int8" and "input" not in firmware.symbols and "logits" not in firmware.symbols
    assert firmware.section_bytes[".noinit"] < 4 * constants["INPUT_FLOATS"]  # only the sums

    images, _ = photo_batch(PHOTOS, "cifar", 32, 2, offset=8)
    quantized = reference.quantize_input(images)
    sums, stats = run_firmware(firmware, quantized)
    compile_int8_check_binary(tmp_path / "c", tmp_path / "host", HOST_FLAGS)
    host, _ = run_int8_check_binary(tmp_path / "host", quantized, firmware.num_classes)
    assert sums.dtype == np.int32 and np.array_equal(sums, host)
    assert np.array_equal(sums, reference.integer_logits(quantized))
    assert not np.array_equal(sums[0], sums[1])  # two photos, two answers: the image did reach the slot
    assert np.array_equal(run_firmware(firmware, images)[0], sums)  # float images are quantized the same way
    assert 0 < stats.stack_high_water < stats.stack_bytes and stats.instructions[0] > 100_000
