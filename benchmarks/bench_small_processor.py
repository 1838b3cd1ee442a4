"""The generated C engine on a small processor: a Cortex-M7 with FPU, built with zig cc, run in unicorn.

Usage: .venv/bin/python benchmarks/bench_small_processor.py [--images 3] [--emulate-imagenet] [--int8-imagenet]

For each model: export the C engine, link it with the bare-metal harness into the smallest RAM that
holds it (squeezenet.export.mcu.ram_budget: the export's SQUEEZENET_RAM_BYTES, the input and logits
buffers and a 4 KiB stack, in 4 KiB pages) and 2 MiB of flash, run real photos in the emulator with
only that flash and RAM mapped, and compare the logits bit for bit with the host build (gcc -O2
-ffp-contract=off, the parity harness). The published ImageNet model is also linked against 512 KiB
and 1 MiB of RAM to show what a typical part refuses; emulating it (about 30 times the CIFAR work)
takes long, hence --emulate-imagenet. Latency is instructions / 480 MHz, one instruction per cycle.

--int8-imagenet adds the published model as the int8 engine (calibrated on 32 ImageNet photos) in
512 KiB of RAM: the in-place harness, whose emulator writes the int8 image straight into the
engine's input slot, run on one photo not used for calibration; its int32 sums are compared with the
host build's (squeezenet_predict_int8) and with `Int8Model.integer_logits`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "src"))
from report import write_section

DATA = ROOT.parent / "shared" / "data"
MODELS = {
    "CIFAR SqueezeNet, Deep Compression 6-bit (32x32)": (ROOT / "results" / "cifar10" / "squeezenet_cifar_dc6bit_huffman.sqz",
                                                          DATA / "cifar10" / "train", "cifar", 32),
    "Published SqueezeNet, Deep Compression (227x227)": (DATA / "deep-compression-squeezenet" / "compressed_SqueezeNet.net",
                                                         DATA / "imagenet-samples", "caffe", 227),
}
SMALL_RAMS = (512 * 1024, 1024 * 1024)
INT8_IMAGENET = "Published SqueezeNet, int8 engine, image written in place (227x227)"
INT8_CALIBRATION_PHOTOS = 32


def _kib(count: int) -> str:
    return f"{count / 1024:,.1f} KiB"


def measure(name: str, weights: Path, photos: Path, preset: str, size: int, images: int, emulate: bool,
            folder: Path) -> dict:
    from squeezenet.export.c99.check import compile_check_binary, run_check_binary
    from squeezenet.export.c99.export import export_c
    from squeezenet.export.mcu import build_firmware, ram_budget, run_firmware
    from squeezenet.export.photos import photo_batch

    c_folder = folder / "c"
    export_c(weights, c_folder, command=f"squeezenet export --format c --weights {weights} --out {c_folder}")
    row = {"model": name, "refused": {}}
    for ram in SMALL_RAMS:
        try:
            build_firmware(c_folder, folder / f"ram{ram}", ram_bytes=ram)
            row["refused"][ram] = "links"
        except ValueError as error:
            row["refused"][ram] = str(error)
    budget = ram_budget(c_folder)
    firmware = build_firmware(c_folder, folder / "firmware", ram_bytes=budget)
    row.update(budget=budget, flash=firmware.flash_used, weights=firmware.section_bytes[".rodata"],
               static_ram=firmware.static_ram)
    print(f"{name}: flash {firmware.flash_used} B, RAM budget {budget} B, sections {firmware.section_bytes}", flush=True)
    if not emulate:
        return row
    batch, _ = photo_batch(photos, preset, size, images)
    logits, stats = run_firmware(firmware, batch)
    compile_check_binary(c_folder, folder / "predict", ("-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Werror"))
    host = run_check_binary(folder / "predict", batch, firmware.num_classes)
    row.update(images=len(batch), stack=stats.stack_high_water, instructions=stats.instructions,
               milliseconds=stats.estimated_ms, emulation_seconds=stats.emulation_seconds,
               identical=bool(np.array_equal(logits.view(np.uint32), host.view(np.uint32))),
               max_difference=float(np.abs(logits - host).max()))
    print(row, flush=True)
    return row


def measure_int8_imagenet(folder: Path) -> dict:
    """The published model as the int8 engine, linked into 512 KiB of RAM and emulated on one photo."""
    import time

    from squeezenet.export.c99_int8.check import (
        compile_int8_check_binary,
        run_int8_check_binary,
    )
    from squeezenet.export.c99_int8.export import export_c_int8
    from squeezenet.export.compressed import compressed_model
    from squeezenet.export.mcu import build_firmware, run_firmware
    from squeezenet.export.photos import photo_batch, photo_paths
    from squeezenet.int8.reference import Int8Model

    weights, photos, preset, size = MODELS["Published SqueezeNet, Deep Compression (227x227)"]
    calibration, _ = photo_batch(photos, preset, size, INT8_CALIBRATION_PHOTOS)
    compressed = compressed_model(weights)
    reference = Int8Model.calibrated(compressed.spec, compressed.layers, calibration)
    c_folder = folder / "c"
    export_c_int8(weights, c_folder, calibration_images=calibration, compressed=compressed, int8_model=reference,
                  command=f"squeezenet export --format c --precision int8 --weights {weights} --out {c_folder}")
    ram = SMALL_RAMS[0]
    firmware = build_firmware(c_folder, folder / "firmware", ram_bytes=ram)
    print(f"{INT8_IMAGENET}: flash {firmware.flash_used} B, RAM {ram} B, static {firmware.static_ram} B, "
          f"sections {firmware.section_bytes}", flush=True)
    seen = [path for path, _ in photo_paths(photos, INT8_CALIBRATION_PHOTOS)]
    images, _ = photo_batch(photos, preset, size, 1, exclude=seen)
    quantized = reference.quantize_input(images)
    started = time.perf_counter()
    sums, stats = run_firmware(firmware, quantized)
    wall = time.perf_counter() - started
    compile_int8_check_binary(c_folder, folder / "predict", ("-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Werror"))
    host, _ = run_int8_check_binary(folder / "predict", quantized, firmware.num_classes)
    expected = reference.integer_logits(quantized)
    row = {"model": INT8_IMAGENET, "refused": {ram: "links", SMALL_RAMS[1]: "links"},  # links in 512 KiB, so in 1 MiB
           "budget": ram, "flash": firmware.flash_used, "weights": firmware.section_bytes[".rodata"],
           "static_ram": firmware.static_ram, "images": len(images), "stack": stats.stack_high_water,
           "instructions": stats.instructions, "milliseconds": stats.estimated_ms,
           "emulation_seconds": stats.emulation_seconds, "emulation_wall_seconds": wall,
           "identical": bool(np.array_equal(sums, host) and np.array_equal(sums, expected)),
           "max_difference": float(max(np.abs(sums.astype(np.int64) - host).max(),
                                       np.abs(sums.astype(np.int64) - expected).max())),
           "top1": int(sums[0].argmax())}
    print(row, flush=True)
    return row


def _table(rows: list[dict]) -> str:
    lines = [("| model | flash used (weights) | RAM budget (static + stack) | stack high-water | instructions / inference "
              "| est. ms at 480 MHz | logits vs host gcc build | fits 512 KiB RAM | fits 1 MiB RAM |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        emulated = "instructions" in row
        fits = ["yes" if row["refused"][ram] == "links" else "no: " + row["refused"][ram].split(": ", 1)[1]
                for ram in SMALL_RAMS]
        lines.append(
            f"| {row['model']} | {_kib(row['flash'])} ({_kib(row['weights'])}) | {_kib(row['budget'])} "
            f"({_kib(row['static_ram'])} + {_kib(row['budget'] - row['static_ram'])}) | "
            + (f"{row['stack']} B | {max(row['instructions']):,} | {row['milliseconds']:,.0f} | "
               + (("int32 sums bit-identical (host and Int8Model) on " if row["model"] == INT8_IMAGENET
                   else "bit-identical on ") + f"{row['images']} photo{'s' if row['images'] > 1 else ''}"
                  if row["identical"]
                  else f"differ by {row['max_difference']:.3g}") if emulated else "not emulated | | | ")
            + f" | {fits[0]} | {fits[1]} |")
    return "\n".join(lines)


def _int8_note(row: dict) -> str:
    return (f"\n\n{INT8_IMAGENET}: `export_c_int8` calibrated on {INT8_CALIBRATION_PHOTOS} ImageNet sample photos spread over the "
            "sorted folder (`photo_paths`), linked into a RAM region of exactly 512 KiB (524,288 bytes) with the int8 harness: no float "
            "buffers on the chip; the emulator writes the int8 image into the engine's input slot "
            "(`squeezenet_input_buffer()`, inside its arena) when inference starts, as a camera's DMA would, and the "
            "harness calls `squeezenet_predict_in_place`. Emulated on one photo not used for calibration (top-1 class "
            f"{row['top1']}); instructions counted from the call of squeezenet_predict_in_place to its return. Static "
            f"RAM {row['static_ram']:,} bytes, stack high-water {row['stack']} bytes, "
            f"{max(row['instructions']):,} instructions, about {row['milliseconds']:,.0f} ms at 480 MHz; emulation "
            f"wall time {row['emulation_wall_seconds']:,.0f} s on this machine.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--emulate-imagenet", action="store_true")
    parser.add_argument("--cifar-only", action="store_true")
    # On by default, so that `make bench` rewrites the section with every row (about 2 minutes more).
    parser.add_argument("--int8-imagenet", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, (weights, photos, preset, size)) in enumerate(MODELS.items()):
            if index and args.cifar_only:
                break
            emulate = index == 0 or args.emulate_imagenet
            rows.append(measure(name, weights, photos, preset, size, args.images, emulate, Path(scratch) / str(index)))
        if args.int8_imagenet:
            rows.append(measure_int8_imagenet(Path(scratch) / "int8"))
    body = _table(rows) + (
        "\n\nTarget: Cortex-M7 with FPv5-D16 (`zig cc -target thumb-freestanding-eabihf -mcpu=cortex_m7+fp_armv8d16 "
        "-std=c99 -O2 -ffp-contract=off`), emulated by unicorn with only the flash and the RAM budget mapped "
        "(plus the 4 KiB System Control page for the CPACR write). RAM budget: the smallest 4 KiB multiple that holds "
        "the export's static buffers, the input and logits buffers and a 4 KiB minimum stack; the stack takes the rest. "
        "Instructions are counted from the call of squeezenet_predict to its return; the estimate assumes one "
        "instruction per cycle at 480 MHz (a real M7 dual-issues, but waits on flash and on the FPU), so read it as "
        "an order of magnitude. Host build: gcc -std=c99 -O2 -ffp-contract=off with the parity harness."
        + "".join(_int8_note(row) for row in rows if row["model"] == INT8_IMAGENET))
    command = "python benchmarks/bench_small_processor.py " + " ".join(sys.argv[1:])
    write_section("small-processor", "Small processor", command.strip(), body)
    print(body)


if __name__ == "__main__":
    main()
