"""TFLite Micro on the published SqueezeNet, fully int8: model bytes, arena bytes, top-1, agreement with fp32.

Usage: .venv/bin/python benchmarks/bench_tflite_micro.py [--micro-every 4] [--write] [--instructions]

Needs the optional packages litert-torch (conversion), ai-edge-litert (the LiteRT interpreter) and
tflite-micro (the TFLite Micro Python interpreter and its compression tool); none of them is a
requirement of the squeezenet package.

Model: the published ImageNet SqueezeNet v1.0 (compressed_SqueezeNet.net, Caffe preprocessing).
Conversion: litert-torch with its PT2E quantizer (symmetric per-channel int8 weights, int8
activations, static ranges), calibrated on the calibration photos; the result has int8 weights and
activations throughout, and an int8 input (NCHW, the Caffe-preprocessed photo quantized with the
input's scale) and an int8 output (the 1,000 logits; dequantized here for the comparisons).

Photos: imagenet-samples and imagenet-val-extra (1,124 labelled photos), sorted by file name; the
split was fixed before any result was seen: position % 4 == 0 calibrates (281 photos), the rest
evaluate (843). LiteRT's interpreter runs every evaluation photo; TFLite Micro's reference-kernel
interpreter is slow on the shared machine, so it runs every ``--micro-every``-th evaluation photo,
and its agreement with LiteRT on that subset is reported. The resized, cropped uint8 photos are
cached in build/ (bench_int8.py's cache is reused when present), logits and the converted models
in build/tflite/, so an interrupted run resumes.

Arena bytes: the smallest ``arena_size`` with which TFLite Micro's interpreter allocates and runs
(bisection), and what its recording allocator reports. Compressed model: TFLite Micro's LUT
compression (tflite_micro.tensorflow.lite.micro.compression) of every int8 weight tensor whose
values fit a narrower index (per output channel or per tensor, whichever is narrower).

Instructions (``--instructions``, only that): x86-64 instructions executed on this host (valgrind's
callgrind, Ir), not Cortex-M7 ones, for the first evaluation photo: TFLite Micro's
MicroInterpreter::Invoke only, and our int8 C engine's host build (``squeezenet export --format c
--precision int8``, gcc with bench_small_processor.py's HOST_FLAGS) inside squeezenet_predict (float
photo in, so it also quantizes the photo: about 0.1% of its count). Each runs twice, to show the
count repeats; merged into build/tflite/summary.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "src"))
from report import write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FOLDERS = [DATA / "imagenet-samples", DATA / "imagenet-val-extra"]
WEIGHTS = DATA / "deep-compression-squeezenet" / "compressed_SqueezeNet.net"
CACHE = ROOT / "build" / "tflite"
INSTRUCTIONS = ROOT / "build" / "tflite-instr"
CALIBRATE_EVERY = 4
SIZE = 227


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------- photos

# The same photos, order and calibration split as benchmarks/bench_int8.py, and its preprocessed-photo cache.
from bench_int8 import labelled_photos, preprocessed as caffe_inputs  # noqa: E402


def photo_list_hash(paths: list[Path]) -> str:
    """A short hash of photo file names in order: lets another benchmark check it reads the same photos."""
    return hashlib.sha256("\n".join(path.name for path in paths).encode()).hexdigest()[:16]


def cached(name: str, compute) -> np.ndarray:
    path = CACHE / f"{name}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    result = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, result)
    log(f"{name}: {time.perf_counter() - started:.0f} s")
    return result


# ---------------------------------------------------------------- engines

def torch_model():
    from squeezenet.weights import load_model

    return load_model(WEIGHTS).eval()


def torch_logits(model, images: np.ndarray, batch: int = 16) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(images[i:i + batch])).numpy()
                               for i in range(0, len(images), batch)])


def convert_litert_torch(model, calibration: np.ndarray) -> bytes:
    """PyTorch -> fully int8 LiteRT flatbuffer: litert-torch's PT2E quantizer, static per-channel ranges."""
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError:  # older stacks keep PT2E in torch.ao
        from torch.ao.quantization.quantize_pt2e import convert_pt2e, prepare_pt2e

    sample = (torch.from_numpy(calibration[:1]),)
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    captured = torch.export.export(model, sample).module()
    prepared = prepare_pt2e(captured, quantizer)
    with torch.no_grad():
        for start in range(len(calibration)):  # the graph was captured for batch 1
            prepared(torch.from_numpy(calibration[start:start + 1]))
    quantized = convert_pt2e(prepared, fold_quantize=False)
    edge = litert_torch.convert(quantized, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.tflite"
        edge.export(str(path))
        return path.read_bytes()


def litert_logits(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    from ai_edge_litert.interpreter import OpResolverType

    # LiteRT's builtin int8 kernels, without the XNNPACK delegate (whose int8 rounding may differ).
    interpreter = Interpreter(model_content=model_bytes, num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for image in images:
        interpreter.set_tensor(source["index"], _engine_input(image[None], source))
        interpreter.invoke()
        outputs.append(_engine_output(interpreter.get_tensor(target["index"]), target))
    return np.concatenate(outputs)


def _engine_input(image: np.ndarray, details: dict) -> np.ndarray:
    """The float NCHW photo in the layout and type the converted graph's input asks for."""
    shape = tuple(details["shape"])
    if shape[-1] == 3 and shape[1] != 3:
        image = image.transpose(0, 2, 3, 1)
    if np.dtype(details["dtype"]) == np.float32:
        return np.ascontiguousarray(image, dtype=np.float32)
    scale, zero = _quantization(details)
    info = np.iinfo(details["dtype"])
    return np.clip(np.round(image / scale) + zero, info.min, info.max).astype(details["dtype"])


def _quantization(details: dict) -> tuple[float, int]:
    """(scale, zero point) from LiteRT's ``quantization`` or TFLite Micro's ``quantization_parameters``."""
    if "quantization" in details:
        return details["quantization"]
    parameters = details["quantization_parameters"]
    return float(np.asarray(parameters["scales"]).reshape(-1)[0]), int(np.asarray(parameters["zero_points"]).reshape(-1)[0])


def _engine_output(output: np.ndarray, details: dict) -> np.ndarray:
    output = output.reshape(output.shape[0], -1)
    if np.dtype(details["dtype"]) == np.float32:
        return output.astype(np.float32)
    scale, zero = _quantization(details)
    return ((output.astype(np.float32) - zero) * scale).astype(np.float32)


def describe_interface(model_bytes: bytes) -> str:
    from collections import Counter

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model_bytes,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    parts = []
    for kind, details in (("input", interpreter.get_input_details()[0]), ("output", interpreter.get_output_details()[0])):
        scale, zero = details["quantization"]
        parts.append(f"{kind} {np.dtype(details['dtype']).name} {[int(side) for side in details['shape']]} "
                     f"(scale {scale:.6g}, zero point {zero})")
    operators = Counter(op["op_name"] for op in interpreter._get_ops_details())
    return ", ".join(parts) + "; operators: " + ", ".join(f"{count} {name}" for name, count in sorted(operators.items()))


def micro_interpreter(model_bytes: bytes, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_size)


def micro_logits(model_bytes: bytes, images: np.ndarray, arena_size: int) -> np.ndarray:
    interpreter = micro_interpreter(model_bytes, arena_size)
    source, target = interpreter.get_input_details(0), interpreter.get_output_details(0)
    outputs = []
    for image in images:
        interpreter.set_input(_engine_input(image[None], source), 0)
        interpreter.invoke()
        outputs.append(_engine_output(interpreter.get_output(0), target))
    return np.concatenate(outputs)


@contextlib.contextmanager
def _captured_native_output():
    """Capture what native code prints on file descriptors 1 and 2 (TFLite Micro's MicroPrintf)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        text = []
        try:
            yield text
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))


def micro_runs(model_bytes: bytes, arena_size: int, image: np.ndarray) -> bool:
    try:
        with _captured_native_output():
            interpreter = micro_interpreter(model_bytes, arena_size)
            interpreter.set_input(_engine_input(image[None], interpreter.get_input_details(0)), 0)
            interpreter.invoke()
        return True
    except Exception:  # noqa: BLE001 - an arena too small surfaces as a RuntimeError from allocation
        return False


def smallest_arena(model_bytes: bytes, image: np.ndarray, *, granule: int = 16) -> int:
    """The smallest arena_size (to ``granule`` bytes) with which the TFLite Micro interpreter allocates and runs."""
    high = 1 << 20
    while not micro_runs(model_bytes, high, image):
        high *= 2
        if high > 1 << 28:
            raise RuntimeError("TFLite Micro does not run this model with a 256 MiB arena")
    low = 0
    while high - low > granule:
        middle = (low + high) // 2 // granule * granule
        if micro_runs(model_bytes, middle, image):
            high = middle
        else:
            low = middle
    return high


def recorded_allocations(model_bytes: bytes, arena_size: int, image: np.ndarray) -> str:
    with _captured_native_output() as text:
        interpreter = micro_interpreter(model_bytes, arena_size)
        interpreter.set_input(_engine_input(image[None], interpreter.get_input_details(0)), 0)
        interpreter.invoke()
        interpreter.print_allocations()
    return text[0]


def _arena_head(report: str) -> int | None:
    match = re.search(r"\[RecordingMicroAllocator\] Arena allocation head (\d+) bytes", report)
    return int(match.group(1)) if match else None


def _arena_used(report: str) -> int | None:
    match = re.search(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes", report)
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------- TFLite Micro compression

def lut_compressed(model_bytes: bytes) -> dict:
    """TFLite Micro's LUT compression of the int8 weight tensors whose values fit fewer than 8 bits.

    Each tensor takes the narrower of one value table per output channel and one for the whole tensor.
    Returns the model with every such tensor compressed, the tensors whose compression the tool reports
    as an expansion, and the model with only the others compressed (None when every one expands)."""
    import importlib
    import warnings

    from tflite_micro.tensorflow.lite.micro.compression import model_editor, spec

    # the package's __init__ rebinds the name ``compress`` to the function; take the module itself
    compress = importlib.import_module("tflite_micro.tensorflow.lite.micro.compression.compress")
    model = model_editor.read(model_bytes)
    specs, notes = {}, {}
    for subgraph_index, subgraph in enumerate(model.subgraphs):
        for tensor_index, tensor in enumerate(subgraph.tensors):
            array = tensor.array if tensor.buffer is not None and tensor.buffer.data else None
            if array is None or array.dtype != np.int8 or array.ndim != 4 or array.size < 256:
                continue
            per_tensor = max(1, math.ceil(math.log2(len(np.unique(array)))))
            per_channel = max(1, math.ceil(math.log2(max(len(np.unique(row)) for row in array))))
            bits = min(per_tensor, per_channel)
            if bits >= 8:
                continue
            mode = spec.PerChannel(axis=0) if per_channel < per_tensor else spec.PerTensor()
            method = spec.LookUpTableCompression(index_bitwidth=bits, mode=mode)
            specs[tensor_index] = spec.Tensor(subgraph=subgraph_index, tensor=tensor_index, compression=[method])
            name = "/".join(part.split(".")[-1] for part in (tensor.name or str(tensor_index)).rstrip(";").split("/")[-2:])
            notes[tensor_index] = f"{name} {bits}-bit {'per channel' if per_channel < per_tensor else 'per tensor'}"
    result = {"model": model_bytes, "notes": list(notes.values()), "expanded": [], "shrinking": None,
              "considered": len(specs)}
    if not specs:
        return result
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result["model"] = bytes(compress.compress(model_bytes, list(specs.values())))
    expanded = {int(m.group(1)) for w in caught
                if (m := re.search(r"tensor (\d+)\) resulted in expansion", str(w.message)))}
    result["expanded"] = [notes[index] for index in sorted(expanded)]
    keep = [item for index, item in specs.items() if index not in expanded]
    if keep:
        result["shrinking"] = bytes(compress.compress(model_bytes, keep))
    return result


# ---------------------------------------------------------------- instructions per inference (host)

# Runs the interpreter twice on one int8 photo; the arena reuses the input's bytes, so set it before each Invoke.
MICRO_DRIVER = ("import sys, numpy as np; from tflite_micro.python.tflite_micro import runtime; "
                "m = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=int(sys.argv[2])); "
                "x = np.load(sys.argv[3]); [(m.set_input(x, 0), m.invoke()) for _ in range(2)]")


def callgrind_counts(command: list[str], symbol: str, out: Path) -> tuple[list[int], str]:
    """x86-64 instructions executed on this host (callgrind's Ir) inside each call of ``symbol``, and the command."""
    for old in out.parent.glob(out.name + "*"):
        old.unlink()
    valgrind = ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={symbol}",
                f"--dump-after={symbol}", f"--callgrind-out-file={out}", *command]
    subprocess.run(valgrind, check=True, capture_output=True)
    dumps = sorted(out.parent.glob(out.name + ".*"), key=lambda path: int(path.suffix[1:]))
    counts = [int(re.search(r"^totals: (\d+)", path.read_text(), re.MULTILINE).group(1)) for path in dumps]
    return counts, shlex.join(valgrind)


def host_instructions(model_bytes: bytes, image: np.ndarray, arena_size: int) -> dict:
    """Instructions per inference on this host: TFLite Micro's Invoke, and our int8 C engine's squeezenet_predict."""
    from bench_small_processor import HOST_FLAGS

    from squeezenet.export.c99.check import compile_check_binary

    INSTRUCTIONS.mkdir(parents=True, exist_ok=True)
    photo = INSTRUCTIONS / "photo-int8.npy"
    np.save(photo, _engine_input(image[None], micro_interpreter(model_bytes, arena_size).get_input_details(0)))
    micro, micro_command = callgrind_counts(
        [sys.executable, "-c", MICRO_DRIVER, str(CACHE / "squeezenet-int8-litert-torch.tflite"), str(arena_size),
         str(photo)], "tflite::micro::MicroInterpreter::Invoke()", INSTRUCTIONS / "callgrind.micro")
    c_folder = INSTRUCTIONS / "c-int8"
    export = [sys.executable, "-m", "squeezenet", "export", "--format", "c", "--precision", "int8", "--weights",
              str(WEIGHTS), "--calibration-data", str(DATA / "imagenet-samples"), "--calibration-images", "16",
              "--out", str(c_folder), "--json"]
    if not (c_folder / "model.c").exists():
        subprocess.run(export, check=True, capture_output=True)
    compile_check_binary(c_folder, INSTRUCTIONS / "predict", HOST_FLAGS)
    np.concatenate([image[None]] * 2).astype("<f4").tofile(INSTRUCTIONS / "photos-float.bin")
    ours, our_command = callgrind_counts(
        [str(INSTRUCTIONS / "predict"), str(INSTRUCTIONS / "photos-float.bin"), str(INSTRUCTIONS / "logits.bin")],
        "squeezenet_predict", INSTRUCTIONS / "callgrind.ours")
    log(f"host x86-64 instructions per inference: TFLite Micro Invoke {micro}, our int8 C {ours}")
    return {"micro_host_instructions": micro[0], "micro_host_instructions_command": micro_command,
            "our_int8_host_instructions": ours[0], "our_int8_host_instructions_command": our_command,
            "our_int8_host_export_command": shlex.join(export),
            "host_instructions_repeat": micro[1:] + ours[1:] == micro[:1] + ours[:1],
            "host_instructions_note": "x86-64 instructions (valgrind callgrind Ir) on the build host, not "
                                      "Cortex-M7: TFLite Micro MicroInterpreter::Invoke only; our int8 C engine "
                                      "squeezenet_predict (quantizes the float photo, then the network)",
            "host_instructions_date": time.strftime("%Y-%m-%d")}


def update_summary(values: dict) -> None:
    """Merge ``values`` into build/tflite/summary.json (a temporary file, then a rename)."""
    path = CACHE / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    summary.update(values)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(summary, indent=1))
    os.replace(temporary, path)


# ---------------------------------------------------------------- report

def _bit_summary(notes: list[str]) -> str:
    """'Fire_3/Conv2d_squeeze 7-bit per channel', ... -> '17 at 7 bits, 4 at 6 bits, ... per output channel'."""
    from collections import Counter

    counts = Counter(re.search(r" (\d)-bit (per \w+)", note).groups() for note in notes)
    return ", ".join(f"{count} at {bits} bits {mode}" for (bits, mode), count in sorted(counts.items(), reverse=True))


def top1(logits: np.ndarray, truth: np.ndarray) -> float:
    return float((logits.argmax(1) == truth).mean())


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--micro-every", type=int, default=4,
                        help="TFLite Micro runs every K-th evaluation photo (default 4)")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True,
                        help="write the BENCHMARKS.md section (on by default, as `make bench-long` runs it)")
    parser.add_argument("--instructions", action="store_true",
                        help="only count host x86-64 instructions per inference under callgrind (TFLite Micro's "
                             "Invoke and our int8 C engine) and merge them into build/tflite/summary.json")
    args = parser.parse_args()

    paths, labels = labelled_photos()
    images = caffe_inputs(paths)
    position = np.arange(len(paths))
    calibration, evaluation = images[position % CALIBRATE_EVERY == 0], images[position % CALIBRATE_EVERY != 0]
    truth = labels[position % CALIBRATE_EVERY != 0]
    subset = np.arange(len(evaluation)) % args.micro_every == 0
    if args.instructions:
        int8 = (CACHE / "squeezenet-int8-litert-torch.tflite").read_bytes()
        summary = json.loads((CACHE / "summary.json").read_text()) if (CACHE / "summary.json").exists() else {}
        arena = summary.get("arena_bytes") or smallest_arena(int8, evaluation[0])
        first = next(path for index, path in enumerate(paths) if index % CALIBRATE_EVERY != 0)
        update_summary({**host_instructions(int8, evaluation[0], arena), "host_instructions_photo": first.name})
        return
    log(f"{len(paths)} photos: {len(calibration)} calibrate, {len(evaluation)} evaluate, "
        f"{int(subset.sum())} for TFLite Micro")

    model = torch_model()
    fp32 = cached("fp32-torch-eval", lambda: torch_logits(model, evaluation))

    int8_path = CACHE / "squeezenet-int8-litert-torch.tflite"
    if not int8_path.exists():
        started = time.perf_counter()
        int8_path.write_bytes(convert_litert_torch(model, calibration))
        log(f"litert-torch conversion: {time.perf_counter() - started:.0f} s")
    int8 = int8_path.read_bytes()

    interface = describe_interface(int8)
    log(interface)
    litert = cached("int8-litert-eval", lambda: litert_logits(int8, evaluation))

    arena = smallest_arena(int8, evaluation[0])
    allocations = recorded_allocations(int8, arena, evaluation[0])
    (CACHE / "allocations.txt").write_text(allocations)
    log(f"smallest arena {arena} bytes; recorded {_arena_used(allocations)} bytes")
    micro_name = f"int8-micro-eval-every{args.micro_every}"
    micro = cached(micro_name, lambda: micro_logits(int8, evaluation[subset], arena))

    rows = [
        dict(engine="PyTorch fp32 (reference)", model="-", arena="-", photos=int(len(evaluation)),
             top1=top1(fp32, truth), agree=1.0),
        dict(engine="LiteRT interpreter (ai-edge-litert), int8", model=len(int8), arena="-",
             photos=int(len(evaluation)), top1=top1(litert, truth), agree=agreement(litert, fp32)),
        dict(engine="TFLite Micro interpreter (tflite-micro), int8", model=len(int8), arena=arena,
             photos=int(subset.sum()), top1=top1(micro, truth[subset]), agree=agreement(micro, fp32[subset])),
        dict(engine="(same subset) PyTorch fp32", model="-", arena="-", photos=int(subset.sum()),
             top1=top1(fp32[subset], truth[subset]), agree=1.0),
        dict(engine="(same subset) LiteRT int8", model=len(int8), arena="-", photos=int(subset.sum()),
             top1=top1(litert[subset], truth[subset]), agree=agreement(litert[subset], fp32[subset])),
    ]
    # What bench_small_processor.py's table across engines reads (sizes, and where the logits are).
    evaluation_paths = [path for index, path in enumerate(paths) if index % CALIBRATE_EVERY != 0]
    update_summary({
        "model_bytes": len(int8), "arena_bytes": arena, "arena_recorded_bytes": _arena_used(allocations),
        "micro_logits": f"{micro_name}.npy", "micro_photos": int(subset.sum()),
        "micro_photos_sha256": photo_list_hash([evaluation_paths[i] for i in np.flatnonzero(subset)]),
        "micro_top1": top1(micro, truth[subset]), "micro_agreement_with_fp32": agreement(micro, fp32[subset]),
        "date": time.strftime("%Y-%m-%d")})
    ties = int(sum((row == row.max()).sum() > 1 for row in litert))
    engines_agree = agreement(micro, litert[subset])
    largest_difference = float(np.abs(micro - litert[subset]).max())
    log(f"TFLite Micro vs LiteRT on {int(subset.sum())} photos: top-1 agreement {engines_agree:.4f}, "
        f"largest logit difference {largest_difference:g}")

    compressed_text = ""
    try:
        lut = lut_compressed(int8)
        compressed = lut["model"]
        (CACHE / "squeezenet-int8-litert-torch-lut.tflite").write_bytes(compressed)
        compressed_arena = smallest_arena(compressed, evaluation[0])
        check = micro_logits(compressed, evaluation[subset][:8], compressed_arena)
        same = bool(np.array_equal(check, micro[:8]))
        rows.insert(3, dict(engine="TFLite Micro, LUT-compressed weights (first 8 subset photos)",
                            model=len(compressed), arena=compressed_arena, photos=8,
                            top1=top1(check, truth[subset][:8]), agree=agreement(check, fp32[subset][:8])))
        compressed_text = (
            f"TFLite Micro's LUT compression: {lut['considered']} of the int8 weight tensors fit fewer than 8 "
            f"bits ({_bit_summary(lut['notes'])}); compressing them all gives {len(compressed):,} bytes "
            f"({len(compressed) - len(int8):+,} against the uncompressed {len(int8):,}); the tool reports "
            f"{len(lut['expanded'])} of them as expansions (value tables outweigh the saved index bits); "
            + (f"compressing only the other {lut['considered'] - len(lut['expanded'])} gives "
               f"{len(lut['shrinking']):,} bytes. " if lut["shrinking"] is not None else "none shrinks. ")
            + f"The compressed model's logits on the first 8 subset photos {'equal' if same else 'differ from'} "
            f"the uncompressed model's.")
    except Exception as error:  # noqa: BLE001 - report where TFLite Micro's compression stops
        compressed_text = f"LUT compression failed: {type(error).__name__}: {error}"
    log(compressed_text)

    table = ["| engine | model bytes | arena bytes | top-1 | top-1 agreement with fp32 | photos |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        size = f"{row['model']:,}" if isinstance(row["model"], int) else row["model"]
        arena_cell = f"{row['arena']:,}" if isinstance(row["arena"], int) else row["arena"]
        table.append(f"| {row['engine']} | {size} | {arena_cell} | {100 * row['top1']:.2f}% | "
                     f"{100 * row['agree']:.2f}% | {row['photos']} |")
    body = "\n".join([
        f"Published ImageNet SqueezeNet v1.0 (Deep Compression release), Caffe preprocessing. Photos: the "
        f"{len(paths):,} labelled photos sorted by file name; position % 4 == 0 calibrates ({len(calibration)}), "
        f"the rest evaluate ({len(evaluation)}); TFLite Micro runs every {args.micro_every}th evaluation photo "
        f"({int(subset.sum())}).",
        "",
        "Conversion: litert-torch, PT2E quantizer (symmetric per-channel int8 weights, static int8 activations), "
        f"calibrated on the calibration photos. Weights and activations are int8 throughout; {interface}. "
        "Model bytes: the flatbuffer. Arena bytes: the "
        "smallest `arena_size` (to 16 bytes) with which `tflite_micro.runtime.Interpreter` allocates and runs; "
        f"its recording allocator reports {_arena_used(allocations):,} bytes at that size "
        f"({_arena_head(allocations):,} bytes of tensor data, the rest persistent buffers and bookkeeping).",
        "",
        *table,
        "",
        f"TFLite Micro against LiteRT on the same {int(subset.sum())} photos: top-1 agreement "
        f"{100 * engines_agree:.2f}%, largest logit difference {largest_difference:g}. The int8 output's "
        f"step is coarse: on {ties} of the {len(evaluation)} evaluation photos LiteRT's int8 output has a tie "
        "for the largest logit (argmax takes the first class), part of what the int8 rows lose.",
        "",
        compressed_text,
    ])
    print(body)
    if args.write:
        write_section("tflite-micro", "TFLite Micro (published SqueezeNet, int8)",
                      f".venv/bin/python benchmarks/bench_tflite_micro.py --micro-every {args.micro_every} --write",
                      body)


if __name__ == "__main__":
    main()
