"""The generated C engines on a small processor (a Cortex-M7 with FPU, built with zig cc, run in unicorn),
and one table across engines: flash, peak RAM, instructions, top-1 and agreement with fp32.

Usage: .venv/bin/python benchmarks/bench_small_processor.py [--images 3] [--int8-photos 4] [--emulate-imagenet]
                                                           [--no-int8-imagenet] [--int8-only] [--summary-only]

Measured here (and saved in build/small-processor/, so that ``--summary-only`` rewrites the section
from them and from the other benchmarks' saved outputs in seconds):

* fp32 C engine: each model's export linked with the bare-metal harness into the smallest RAM that
  holds it (squeezenet.export.mcu.ram_budget: SQUEEZENET_RAM_BYTES, the input and logits buffers and a
  4 KiB stack, in 4 KiB pages) and 2 MiB of flash, and against 512 KiB and 1 MiB of RAM to show what a
  typical part refuses. The CIFAR model is emulated on ``--images`` photos; the ImageNet ones (about 30
  times the work) only with ``--emulate-imagenet``. The same C built for this host (gcc -O2
  -ffp-contract=off) runs the 843 held-out ImageNet photos for its top-1.
* int8 C engine, for the published .net and results/imagenet-small.sqz: quantized as
  benchmarks/bench_int8.py's default configuration (its cached calibration statistics of the 281
  calibration photos, the default range rule, the default bias correction), linked into its RAM
  budget with the in-place harness (the emulator writes the int8 image into the engine's input slot,
  as a camera's DMA would), emulated on ``--int8-photos`` held-out photos spread over the 843 (50-95 s
  a photo on the shared 2-core machine), int32 sums compared bit for bit with the host build and with
  `Int8Model.integer_logits`; the host build runs all 843. ``--int8-only`` measures just these rows
  (after a recalibration) and keeps the other saved measurements.
* PyTorch fp32 (the reference of every agreement column) and onnxruntime's own static quantizer
  (`squeezenet.export.onnx.quantize_onnx_int8`, calibrated on every 8th calibration photo, 36, to
  keep its calibration pass short) on the same 843 photos.

Read from the other benchmarks: the int8 reference engine and our QDQ ONNX run by onnxruntime
(benchmarks/bench_int8.py, build/int8/), TFLite Micro (benchmarks/bench_tflite_micro.py,
build/tflite/summary.json). Photos: bench_int8's split (1,124 labelled photos sorted by file name,
position % 4 == 0 calibrates, the other 843 evaluate), which TFLite Micro runs too (checked through
the photo list's hash). Latency is instructions / 480 MHz, one instruction per cycle.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "src"))
from bench_int8 import CACHE as INT8_CACHE, CACHE_TAGS, CALIBRATE_EVERY, MODELS as IMAGENET, QDQ_TAGS  # noqa: E402
from bench_int8 import labelled_photos  # noqa: E402
from bench_tflite_micro import photo_list_hash  # noqa: E402
from report import write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
MEASURED = ROOT / "build" / "small-processor"
TFLITE_SUMMARY = ROOT / "build" / "tflite" / "summary.json"
EVALUATE_EVERY = 1  # bench_int8.py --evaluate-every 1 and bench_tflite_micro.py --micro-every 1: the same 843 photos
CIFAR = "CIFAR SqueezeNet, Deep Compression 6-bit (32x32)"
CIFAR_MODEL = (ROOT / "results" / "cifar10" / "squeezenet_cifar_dc6bit_huffman.sqz", DATA / "cifar10" / "train", "cifar", 32)
SMALL_RAMS = (512 * 1024, 1024 * 1024)
HOST_FLAGS = ("-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Werror")
ORT_CALIBRATION_STEP = 8


def _kib(count: int) -> str:
    return f"{count / 1024:,.1f} KiB"


def _save(name: str, logits: np.ndarray) -> None:
    MEASURED.mkdir(parents=True, exist_ok=True)
    np.save(MEASURED / f"{name}.npy", logits)


def _load(path: Path) -> np.ndarray | None:
    return np.load(path) if path.exists() else None


# ---------------------------------------------------------------- photos

def imagenet_split() -> tuple[list[Path], np.ndarray, np.ndarray, np.ndarray]:
    """bench_int8.py's split: (paths, labels, calibration positions, evaluation positions)."""
    paths, labels = labelled_photos()
    positions = np.arange(len(paths))
    return (paths, labels, positions[positions % CALIBRATE_EVERY == 0],
            positions[positions % CALIBRATE_EVERY != 0][::EVALUATE_EVERY])


# ---------------------------------------------------------------- fp32 C engine

def measure_fp32(name: str, weights: Path, folder: Path, *, emulate: np.ndarray | None,
                 host_images: np.ndarray | None = None) -> dict:
    """Link the fp32 export for a Cortex-M7 (its budget, 512 KiB, 1 MiB); emulate it on ``emulate``
    photos; run the host build on ``host_images`` (returned under "host_logits")."""
    from squeezenet.export.c99.check import compile_check_binary, run_check_binary
    from squeezenet.export.c99.export import export_c
    from squeezenet.export.mcu import build_firmware, ram_budget, run_firmware

    c_folder = folder / "c"
    export_c(weights, c_folder, command=f"squeezenet export --format c --weights {weights} --out {c_folder}")
    row = {"model": name, "engine": "fp32", "refused": {}}
    for ram in SMALL_RAMS:
        try:
            build_firmware(c_folder, folder / f"ram{ram}", ram_bytes=ram)
            row["refused"][str(ram)] = "links"
        except ValueError as error:
            row["refused"][str(ram)] = str(error)
    budget = ram_budget(c_folder)
    firmware = build_firmware(c_folder, folder / "firmware", ram_bytes=budget)
    row.update(budget=budget, flash=firmware.flash_used, weights=firmware.section_bytes[".rodata"],
               static_ram=firmware.static_ram)
    print(f"{name}: flash {firmware.flash_used} B, RAM budget {budget} B, sections {firmware.section_bytes}", flush=True)
    if emulate is None and host_images is None:
        return row
    compile_check_binary(c_folder, folder / "predict", HOST_FLAGS)
    if emulate is not None:
        logits, stats = run_firmware(firmware, emulate)
        host = run_check_binary(folder / "predict", emulate, firmware.num_classes)
        row.update(images=len(emulate), stack=stats.stack_high_water, instructions=stats.instructions,
                   milliseconds=stats.estimated_ms, emulation_seconds=stats.emulation_seconds,
                   identical=bool(np.array_equal(logits.view(np.uint32), host.view(np.uint32))),
                   max_difference=float(np.abs(logits - host).max()))
    if host_images is not None:
        started = time.perf_counter()
        row["host_logits"] = run_check_binary(folder / "predict", host_images, firmware.num_classes)
        row["host_seconds"] = time.perf_counter() - started
    print({key: value for key, value in row.items() if key != "host_logits"}, flush=True)
    return row


# ---------------------------------------------------------------- int8 C engine

def int8_reference(key: str, images: np.ndarray, calibration_rows: np.ndarray):
    """bench_int8.py's default configuration of model ``key``, what `Int8Model.calibrated` builds with
    the defaults, from bench_int8.py's cached calibration statistics (computed and cached there when
    missing: several minutes a model here): the default range rule, then the default bias correction."""
    from bench_int8 import _calibration

    from squeezenet.int8 import Int8Model
    from squeezenet.runtime_numpy import read_compressed

    network, layers = read_compressed(IMAGENET[key])
    photos = images[calibration_rows]
    started = time.perf_counter()
    model = Int8Model.from_calibration(network, layers, _calibration(key, network, layers, photos), photos)
    print(f"{key}: quantized with the defaults in {time.perf_counter() - started:.0f} s", flush=True)
    return model


def measure_int8(key: str, folder: Path, images: np.ndarray, paths: list[Path], calibration_rows: np.ndarray,
                 evaluation_rows: np.ndarray, emulated_count: int) -> dict:
    from squeezenet.export.c99_int8.check import compile_int8_check_binary, run_int8_check_binary
    from squeezenet.export.c99_int8.export import export_c_int8
    from squeezenet.export.compressed import compressed_model
    from squeezenet.export.mcu import build_firmware, model_constants, ram_budget, run_firmware

    weights = IMAGENET[key]
    reference = int8_reference(key, images, calibration_rows)
    c_folder = folder / "c"
    export_c_int8(weights, c_folder, calibration_images=images[calibration_rows], compressed=compressed_model(weights),
                  int8_model=reference,
                  command=f"squeezenet export --format c --precision int8 --weights {weights} --out {c_folder}")
    budget = ram_budget(c_folder)
    firmware = build_firmware(c_folder, folder / "firmware", ram_bytes=budget)
    print(f"{weights.name} int8: flash {firmware.flash_used} B, RAM {budget} B, static {firmware.static_ram} B, "
          f"sections {firmware.section_bytes}", flush=True)
    quantized = reference.quantize_input(images[evaluation_rows])
    compile_int8_check_binary(c_folder, folder / "predict", HOST_FLAGS)
    started = time.perf_counter()
    host, _ = run_int8_check_binary(folder / "predict", quantized, firmware.num_classes)
    host_seconds = time.perf_counter() - started
    chosen = np.unique(np.linspace(0, len(evaluation_rows) - 1, emulated_count).round().astype(int))
    started = time.perf_counter()
    sums, stats = run_firmware(firmware, quantized[chosen])
    wall = time.perf_counter() - started
    expected = reference.integer_logits(quantized[chosen])
    row = {"model": weights.name, "engine": "int8", "key": key, "budget": budget, "flash": firmware.flash_used,
           "weights": firmware.section_bytes[".rodata"], "static_ram": firmware.static_ram,
           "engine_ram": model_constants(c_folder)["RAM_BYTES"],
           "refused": {str(ram): "links" if budget <= ram else "not tried" for ram in SMALL_RAMS},
           "range_rule": reference.quantization.range_rule, "bias_correction": reference.quantization.bias_correction,
           "calibration_photos": len(calibration_rows),
           "images": len(chosen), "emulated_photos": [paths[evaluation_rows[i]].name for i in chosen],
           "emulated_positions": [int(i) for i in chosen], "stack": stats.stack_high_water,
           "instructions": stats.instructions, "milliseconds": stats.estimated_ms,
           "emulation_seconds": stats.emulation_seconds, "emulation_wall_seconds": wall,
           "identical": bool(np.array_equal(sums, host[chosen]) and np.array_equal(sums, expected)),
           "max_difference": float(max(np.abs(sums.astype(np.int64) - host[chosen]).max(),
                                       np.abs(sums.astype(np.int64) - expected).max())),
           "host_photos": len(evaluation_rows), "host_seconds": host_seconds}
    print(row, flush=True)
    return {**row, "host_logits": host.astype(np.float32) * reference.logits_scale}


# ---------------------------------------------------------------- PyTorch fp32 and onnxruntime's quantizer

def measure_desktop(key: str, folder: Path, images: np.ndarray, calibration_rows: np.ndarray,
                    evaluation_rows: np.ndarray) -> dict:
    """PyTorch fp32 and onnxruntime's own int8 quantizer on the evaluation photos (logits saved)."""
    import torch

    from squeezenet.export.onnx import export_onnx, onnx_session, quantize_onnx_int8, run_onnx
    from squeezenet.weights import load_model

    model = load_model(IMAGENET[key]).eval()
    evaluation = images[evaluation_rows]
    with torch.inference_mode():
        fp32 = np.concatenate([model(torch.from_numpy(evaluation[i:i + 16])).numpy() for i in range(0, len(evaluation), 16)])
    _save(f"{key}-fp32-torch-every{EVALUATE_EVERY}", fp32)
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(model, folder / "fp32.onnx")
    step = calibration_rows[::ORT_CALIBRATION_STEP]
    started = time.perf_counter()
    quantize_onnx_int8(folder / "fp32.onnx", folder / "int8.onnx", images[step])
    quantize_seconds = time.perf_counter() - started
    session = onnx_session(folder / "int8.onnx")
    _save(f"{key}-ort-quantizer-every{EVALUATE_EVERY}",
          np.concatenate([run_onnx(session, evaluation[i:i + 8]) for i in range(0, len(evaluation), 8)]))
    row = {"ort_quantizer_bytes": (folder / "int8.onnx").stat().st_size, "ort_calibration_photos": int(len(step)),
           "ort_quantize_seconds": quantize_seconds}
    print(key, row, flush=True)
    return row


# ---------------------------------------------------------------- the summary table

def _int8_tag(key: str, rule: str, correction: str) -> str:
    """bench_int8.py's cache name for the int8 reference's logits in one configuration."""
    return f"{key}-int8-{rule}-full-{CACHE_TAGS[correction]}-every{EVALUATE_EVERY}"


def _qdq_files(key: str, rule: str, correction: str) -> tuple[Path, Path]:
    """bench_int8.py's QDQ ONNX file and its onnxruntime logits (fused kernels) in one configuration."""
    onnx_file = INT8_CACHE / f"{key}-qdq-{rule}-{correction}.onnx"
    if not onnx_file.exists():  # written before bias corrections had names
        onnx_file = INT8_CACHE / f"{key}-qdq-{rule}.onnx"
    return onnx_file, INT8_CACHE / f"{key}-qdq-uint8-fused-{rule}-full{QDQ_TAGS[correction]}-every{EVALUATE_EVERY}.npy"


def _accuracy(logits: np.ndarray | None, fp32: np.ndarray | None, truth: np.ndarray) -> tuple[str, str]:
    if logits is None:
        return "not measured", "not measured"
    top1 = f"{100 * (logits.argmax(1) == truth).mean():.2f}%"
    return top1, (f"{100 * (logits.argmax(1) == fp32.argmax(1)).mean():.2f}%" if fp32 is not None else "no fp32")


def summary(measured: dict, truth: np.ndarray, subset_hash: str) -> tuple[str, list[str]]:
    """The one table across engines, and the notes on where each figure was measured."""
    lines = ["| engine | model | flash bytes | peak RAM bytes | instructions / inference | top-1 | "
             "top-1 agreement with fp32 | photos | figures measured by |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    from squeezenet.int8 import DEFAULT_BIAS_CORRECTION, DEFAULT_RANGE_RULE

    default = (DEFAULT_RANGE_RULE, DEFAULT_BIAS_CORRECTION)
    notes = []
    tflite = json.loads(TFLITE_SUMMARY.read_text()) if TFLITE_SUMMARY.exists() else None
    cifar = measured.get("fp32", {}).get("cifar")
    for key, weights in IMAGENET.items():
        name = weights.name
        photos = len(truth)
        fp32 = _load(MEASURED / f"{key}-fp32-torch-every{EVALUATE_EVERY}.npy")

        def add(engine, flash, ram, instructions, logits, count, source, fp32=fp32, name=name):
            top1, agree = _accuracy(logits, fp32, truth)
            lines.append(f"| {engine} | {name} | {flash} | {ram} | {instructions} | {top1} | {agree} | {count} | {source} |")

        int8 = measured.get("int8", {}).get(key)
        # Our int8 rows share one quantization: the C engine's, bench_int8.py's default when it was measured.
        config = (int8["range_rule"], int8["bias_correction"]) if int8 is not None else default
        scales = f"{config[0]} / {config[1]}"
        host = _load(MEASURED / f"{key}-int8-c-host-every{EVALUATE_EVERY}.npy")
        reference_name = f"{_int8_tag(key, *config)}.npy"
        reference = _load(INT8_CACHE / reference_name)
        if int8 is not None:
            peak = int8["static_ram"] + int8["stack"]
            check = ("int32 sums bit-identical to the host build's and `Int8Model`'s" if int8["identical"]
                     else f"int32 sums differ from the host build's by up to {int8['max_difference']:.0f}")
            add(f"our int8 C engine ({scales}), Cortex-M7 (emulated)", f"{int8['flash']:,}",
                f"{peak:,} (static {int8['static_ram']:,} + stack {int8['stack']:,}; region {int8['budget']:,})",
                f"{max(int8['instructions']):,} (largest of {int8['images']})", host, f"{photos} ({int8['images']} emulated)",
                f"flash: the ELF's sections; RAM, instructions: unicorn on {int8['images']} photos ({check}); "
                "top-1: the host build (next row)")
            parity = ("not compared: bench_int8.py has not cached its reference" if reference is None or host is None
                      else "bit-identical to" if np.array_equal(host.view(np.uint32), reference.view(np.uint32))
                      else "DIFFERENT from")
            host_count = (f"{tflite['our_int8_host_instructions']:,} x86-64 (callgrind, 1 photo; same engine "
                          "calibrated on 16 photos)" if key == "net" and tflite and "our_int8_host_instructions" in tflite
                          else "not counted")
            add(f"our int8 C engine ({scales}), host (gcc -O2)", "same C as above", "same C as above", host_count,
                host, photos, f"host build run here on every photo; logits {parity} bench_int8.py's int8 reference "
                f"(`build/int8/{reference_name}`)")
            if parity == "DIFFERENT from":
                notes.append(f"{name}: the int8 C engine's logits (quantized as `Int8Model.calibrated` does) differ "
                             f"from bench_int8.py's cached reference of the same configuration ({scales}): the two "
                             "quantize differently; the reference row below is bench_int8.py's.")
                add(f"int8 reference engine (`Int8Model`, {scales}, as bench_int8.py quantizes it)", "-", "-", "-",
                    reference, photos, f"bench_int8.py cache `build/int8/{reference_name}`")
        else:
            add("our int8 C engine", "not measured", "", "", None, photos, "")
        if config != default:
            notes.append(f"{name}: our int8 engine was measured with {scales} (range rule / bias correction); "
                         f"bench_int8.py's default is now {default[0]} / {default[1]}: rerun with `--int8-only`.")
            add(f"int8 reference engine (`Int8Model`, {default[0]} / {default[1]}, bench_int8.py's default now)",
                "-", "-", "-", _load(INT8_CACHE / f"{_int8_tag(key, *default)}.npy"), photos,
                f"bench_int8.py cache `build/int8/{_int8_tag(key, *default)}.npy`")
        row = measured.get("fp32", {}).get(key)
        if row is not None:
            fits = "fits 512 KiB" if row["refused"]["524288"] == "links" else "does not fit 512 KiB"
            instructions = (f"{max(row['instructions']):,}" if "instructions" in row else
                            f"not emulated at 227x227 (CIFAR 32x32: {max(cifar['instructions']):,})"
                            if cifar and "instructions" in cifar else "not emulated")
            add("our fp32 C engine", f"{row['flash']:,}", f"{row['budget']:,} RAM region, {fits}", instructions,
                _load(MEASURED / f"{key}-fp32-c-host-every{EVALUATE_EVERY}.npy"), photos,
                "flash, RAM: the Cortex-M7 ELF (linked at its RAM budget); top-1: the host build of the same C")
        if key == "net" and tflite is not None:
            micro = _load(ROOT / "build" / "tflite" / tflite["micro_logits"])
            same_photos = tflite["micro_photos_sha256"] == subset_hash
            add("TFLite Micro (tflite-micro interpreter, int8)", f"{tflite['model_bytes']:,} (flatbuffer)",
                f"{tflite['arena_bytes']:,} (arena)",
                f"{tflite['micro_host_instructions']:,} x86-64 (callgrind, 1 photo; no MCU build)"
                if "micro_host_instructions" in tflite else "not measured (Python interpreter on the host, no MCU build)",
                micro if same_photos else None, tflite["micro_photos"],
                "bench_tflite_micro.py (`build/tflite/summary.json` and its logits): flatbuffer bytes, smallest "
                "arena that runs, TFLite Micro's Python interpreter"
                + ("" if same_photos else "; ITS PHOTOS DIFFER from these"))
        onnx_file, qdq = _qdq_files(key, *config)
        add(f"onnxruntime, our int8 scales ({scales}) as uint8 QDQ ONNX, fused kernels",
            f"{onnx_file.stat().st_size:,} (.onnx)" if onnx_file.exists() else "not cached",
            "n/a (desktop runtime)", "n/a", _load(qdq), photos, f"bench_int8.py cache `build/int8/{qdq.name}`")
        desktop = measured.get("desktop", {}).get(key)
        if desktop is not None:
            add("onnxruntime, its own quantizer (`quantize_static`, MinMax, per channel)",
                f"{desktop['ort_quantizer_bytes']:,} (.onnx)", "n/a (desktop runtime)", "n/a",
                _load(MEASURED / f"{key}-ort-quantizer-every{EVALUATE_EVERY}.npy"), photos,
                f"here: calibrated on {desktop['ort_calibration_photos']} of the calibration photos, run by onnxruntime")
        add("PyTorch fp32 (reference)", f"{weights.stat().st_size:,} (model file)", "n/a (desktop runtime)", "n/a",
            fp32, photos, "here: `load_model(...)` on the photos")
        numpy_fp32 = _load(INT8_CACHE / f"{key}-fp32-every{EVALUATE_EVERY}.npy")
        if fp32 is not None and numpy_fp32 is not None:
            notes.append(f"{name}: bench_int8.py's fp32 (the NumPy runtime) agrees with PyTorch fp32 on "
                         f"{100 * (numpy_fp32.argmax(1) == fp32.argmax(1)).mean():.2f}% of the photos.")
    return "\n".join(lines), notes


# ---------------------------------------------------------------- the detail table (unchanged layout)

def _detail_table(rows: list[dict]) -> str:
    lines = [("| model | flash used (weights) | RAM budget (static + stack) | stack high-water | instructions / inference "
              "| est. ms at 480 MHz | logits vs host gcc build | fits 512 KiB RAM | fits 1 MiB RAM |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        emulated = "instructions" in row
        int8 = row["engine"] == "int8"
        fits = ["yes" if row["refused"][str(ram)] == "links" else "no: " + row["refused"][str(ram)].split(": ", 1)[-1]
                for ram in SMALL_RAMS]
        label = f"{row['model']}, int8 engine, image written in place (227x227)" if int8 else row["model"]
        photos = f"{row['images']} photo{'s' if row['images'] > 1 else ''}" if emulated else ""
        check = (("int32 sums bit-identical (host and Int8Model) on " if int8 else "bit-identical on ") + photos
                 if emulated and row["identical"] else f"differ by {row['max_difference']:.3g}" if emulated else "")
        lines.append(
            f"| {label} | {_kib(row['flash'])} ({_kib(row['weights'])}) | {_kib(row['budget'])} "
            f"({_kib(row['static_ram'])} + {_kib(row['budget'] - row['static_ram'])}) | "
            + (f"{row['stack']} B | {max(row['instructions']):,} | {row['milliseconds']:,.0f} | {check}"
               if emulated else "not emulated | | | ")
            + f" | {fits[0]} | {fits[1]} |")
    return "\n".join(lines)


def _int8_note(row: dict) -> str:
    return (f"{row['model']}, int8 engine ({row['range_rule']} / {row['bias_correction']}, calibrated on "
            f"{row['calibration_photos']} photos): linked into its RAM budget ({row['budget']:,} bytes) with the int8 harness "
            f"(no float buffers on the chip); emulated on {row['images']} of the {row['host_photos']} held-out photos "
            f"({', '.join(row['emulated_photos'])}): {', '.join(f'{count:,}' for count in row['instructions'])} "
            f"instructions from the call of squeezenet_predict_in_place to its return, static RAM "
            f"{row['static_ram']:,} bytes, stack high-water {row['stack']} bytes, about {row['milliseconds']:,.0f} ms "
            f"at 480 MHz; emulation wall time {row['emulation_wall_seconds']:,.0f} s on this machine "
            f"({row['emulation_wall_seconds'] / row['images']:,.0f} s a photo). Host build: {row['host_photos']} photos "
            f"in {row['host_seconds']:,.0f} s.")


def write_report(measured: dict, command: str) -> str:
    paths, labels, _, evaluation_rows = imagenet_split()
    truth = labels[evaluation_rows]
    table, notes = summary(measured, truth, photo_list_hash([paths[i] for i in evaluation_rows]))
    detail = [measured.get("fp32", {}).get(key) for key in ("cifar", *IMAGENET)]
    detail += [measured.get("int8", {}).get(key) for key in IMAGENET]
    rows = [row for part in ("fp32", "int8", "desktop") for row in measured.get(part, {}).values()]
    dates = sorted({row["date"] for row in rows})
    commands = sorted({row["command"] for row in rows}) or [command]
    body = "\n".join([
        f"Accuracy: the same {len(truth)} held-out ImageNet photos for every row (bench_int8.py's split of the "
        f"{len(paths):,} labelled photos sorted by file name: position % 4 == 0 calibrates, "
        + ("the rest evaluate" if EVALUATE_EVERY == 1 else f"every {EVALUATE_EVERY}th of the rest evaluates")
        + "; TFLite Micro's photos in bench_tflite_micro.py are the same list, checked by its hash), Caffe "
        "preprocessing; agreement = same top-1 class as PyTorch fp32 with the same model file. Flash, RAM and "
        "instructions of our engines: the Cortex-M7 build (zig cc, the ELF's sections) and the unicorn emulator, "
        "this benchmark. Our int8 rows (C engine, host build, QDQ ONNX) share one quantization, named in brackets "
        "(range rule / bias correction): bench_int8.py's default configuration when the C engine was measured, "
        "from its calibration photos; the host build's logits are compared bit for bit with that benchmark's int8 "
        "reference (last column). "
        f"Emulation and host measurements made on {', '.join(dates) or 'no date'}; the accuracy figures are "
        "recomputed from the saved logits (build/small-processor/ and the other benchmarks' outputs) on every run"
        + (f", this table by `{command}`." if command not in commands else "."),
        "",
        table,
        "",
        *notes,
        "",
        "Peak RAM of the emulated int8 engine: the static RAM below the stack (the engine's arena holding the input "
        "slot and every activation, the int32 sums, harness words) plus the stack high-water (painted stack read "
        "after the runs); the region is the RAM the firmware was linked into and the only RAM the emulator maps. "
        "The fp32 C engine's 227x227 activations need about 7 MiB of RAM, several times the on-chip RAM of "
        "Cortex-M7 parts. "
        "TFLite Micro's arena holds its tensors (its flatbuffer stays in flash); its interpreter was not built for "
        "a Cortex-M7 here, so it has no Cortex-M7 instruction count. Side by side on the build host instead "
        "(`bench_tflite_micro.py --instructions`): valgrind's callgrind counts the x86-64 instructions of TFLite "
        "Micro's `MicroInterpreter::Invoke` (its Python interpreter's reference kernels) and of our int8 C "
        "engine's `squeezenet_predict` (gcc -O2 host build, the same photo: the first held-out one); both counts "
        "repeat exactly on a second run.",
        "",
        "Detail: the Cortex-M7 builds.",
        "",
        _detail_table([row for row in detail if row is not None]),
        "",
        "Target: Cortex-M7 with FPv5-D16 (`zig cc -target thumb-freestanding-eabihf -mcpu=cortex_m7+fp_armv8d16 "
        "-std=c99 -O2 -ffp-contract=off`), emulated by unicorn with only the flash and the RAM budget mapped "
        "(plus the 4 KiB System Control page for the CPACR write). RAM budget: the smallest 4 KiB multiple that holds "
        "the export's static buffers, the exchange buffers and a 4 KiB minimum stack; the stack takes the rest. "
        "Instructions are counted from the call of squeezenet_predict to its return; the estimate assumes one "
        "instruction per cycle at 480 MHz (a real M7 dual-issues, but waits on flash and on the FPU), so read it as "
        "an order of magnitude. Host build: gcc -std=c99 -O2 -ffp-contract=off with the parity harness.",
        *("\n" + _int8_note(row) for row in measured.get("int8", {}).values()),
    ])
    write_section("small-processor", "Small processor", "`, then `".join(commands), body)
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3, help="CIFAR photos emulated (fp32 engine)")
    parser.add_argument("--emulate-imagenet", action="store_true", help="also emulate the fp32 engine at 227x227 (slow)")
    parser.add_argument("--cifar-only", action="store_true")
    parser.add_argument("--int8-imagenet", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the int8 engine on both ImageNet models (on by default)")
    parser.add_argument("--int8-photos", type=int, default=4,
                        help="held-out photos emulated per ImageNet model (about 65 s each here)")
    parser.add_argument("--int8-only", action="store_true",
                        help="measure only the int8 engine (after a recalibration); keep the other saved measurements")
    parser.add_argument("--summary-only", action="store_true",
                        help="rewrite the section from build/small-processor/ and the other benchmarks' outputs")
    args = parser.parse_args()
    if args.int8_photos < 1:
        parser.error("--int8-photos must be at least 1")
    record = MEASURED / "measured.json"
    measured = json.loads(record.read_text()) if record.exists() else {}
    command = (".venv/bin/python benchmarks/bench_small_processor.py " + " ".join(sys.argv[1:])).strip()
    if not args.summary_only:
        measure_all(args, measured, record, command)
    print(write_report(measured, command))


def measure_all(args, measured: dict, record: Path, command: str) -> None:
    """Measure what ``args`` asks for into ``measured`` (parts: fp32, int8, desktop; keyed by model),
    saved to ``record`` after each part, so that an interrupted run keeps what it measured."""
    from squeezenet.export.photos import photo_batch

    today = datetime.date.today().isoformat()

    def keep(part: str, key: str, row: dict) -> None:
        if "host_logits" in row:  # saved with its row, so that the two never disagree
            _save(f"{key}-{part}-c-host-every{EVALUATE_EVERY}", row.pop("host_logits"))
        measured.setdefault(part, {})[key] = {**row, "date": today, "command": command}
        MEASURED.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(measured, indent=1))

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if not args.int8_only:
            weights, photos, preset, size = CIFAR_MODEL
            batch, _ = photo_batch(photos, preset, size, args.images)
            keep("fp32", "cifar", measure_fp32(CIFAR, weights, scratch / "cifar", emulate=batch))
        if args.cifar_only:
            return
        from bench_int8 import preprocessed

        paths, _, calibration_rows, evaluation_rows = imagenet_split()
        images = preprocessed(paths)
        for key, weights in IMAGENET.items():
            if args.int8_only:
                keep("int8", key, measure_int8(key, scratch / f"int8-{key}", images, paths, calibration_rows,
                                               evaluation_rows, args.int8_photos))
                continue
            evaluation = images[evaluation_rows]
            row = measure_fp32(weights.name, weights, scratch / f"fp32-{key}", host_images=evaluation,
                               emulate=evaluation[:args.int8_photos] if args.emulate_imagenet else None)
            keep("fp32", key, row)
            keep("desktop", key, measure_desktop(key, scratch / f"desktop-{key}", images, calibration_rows,
                                                 evaluation_rows))
            if args.int8_imagenet:
                keep("int8", key, measure_int8(key, scratch / f"int8-{key}", images, paths, calibration_rows,
                                               evaluation_rows, args.int8_photos))


if __name__ == "__main__":
    main()
