"""Deployment engines side by side on the published SqueezeNet: latency at batch 1, throughput at batch 32.

Usage: .venv/bin/python benchmarks/bench_deploy.py [--runs 15] [--batch-runs 3] [--threads 1 2]

Engines: PyTorch eager, onnxruntime fp32, onnxruntime int8 (static, calibrated on 8 photos), the
generated C99 engine (built twice: the portable ``gcc -O2`` the tests use, and the optional
``gcc -O3 -march=native -ffp-contract=fast``; called through ctypes, one image per call) and the
NumPy runtime. Inputs are 32 real photos. Each thread count runs in its own worker process (so
OpenBLAS/OpenMP thread counts are set before NumPy and torch load), and inside a worker the engines
are timed in interleaved rounds, so a load spike on this shared machine hits them all alike. The C
engine is single-threaded by design (static buffers, one inference at a time).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "src"))
from report import write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
NET = DATA / "deep-compression-squeezenet" / "compressed_SqueezeNet.net"
PHOTOS = DATA / "imagenet-samples"
C_BUILDS = {
    "C99 engine (gcc -O2, portable)": ["-O2"],
    "C99 engine (gcc -O3 -march=native -ffp-contract=fast)": ["-O3", "-march=native", "-ffp-contract=fast"],
}
BATCH = 32


def _build_c(folder: Path) -> dict[str, ctypes.CDLL]:
    from squeezenet.export.c99.export import export_c

    export_c(NET, folder / "c", command=f"squeezenet export --format c --weights {NET} --out build/c")
    libraries = {}
    for index, (name, flags) in enumerate(C_BUILDS.items()):
        library = folder / f"libsqueezenet{index}.so"
        subprocess.run(["gcc", "-std=c99", *flags, "-Wall", "-Werror", "-shared", "-fPIC", str(folder / "c" / "model.c"),
                        "-o", str(library)], check=True)
        libraries[name] = ctypes.CDLL(str(library))
    return libraries


def _engines(folder: Path, images, threads: int) -> dict:
    """name -> callable(batch) for every engine."""
    import numpy as np
    import torch

    from squeezenet.export.onnx import export_onnx, onnx_session, quantize_onnx_int8, run_onnx
    from squeezenet.runtime_numpy import load_numpy_model
    from squeezenet.weights import load_model

    torch.set_num_threads(threads)
    model = load_model(NET)
    export_onnx(model, folder / "fp32.onnx")
    quantize_onnx_int8(folder / "fp32.onnx", folder / "int8.onnx", images[::4])
    fp32, int8 = onnx_session(folder / "fp32.onnx", threads=threads), onnx_session(folder / "int8.onnx", threads=threads)
    numpy_model = load_numpy_model(NET)
    logits = np.zeros(1000, dtype=np.float32)
    pointer = ctypes.POINTER(ctypes.c_float)

    def c_engine(library):
        def run(batch):
            for image in np.ascontiguousarray(batch, dtype=np.float32):
                library.squeezenet_predict(image.ctypes.data_as(pointer), logits.ctypes.data_as(pointer))
        return run

    def eager(batch):
        with torch.no_grad():
            model(torch.from_numpy(batch))

    engines = {
        "PyTorch eager": eager,
        "onnxruntime fp32": lambda batch: run_onnx(fp32, batch),
        "onnxruntime int8": lambda batch: run_onnx(int8, batch),
    }
    if threads == 1:  # single-threaded by design: one row is enough
        engines.update({name: c_engine(library) for name, library in _build_c(folder).items()})
    engines["NumPy runtime"] = lambda batch: numpy_model(batch)
    return engines


def _interleaved_medians(engines: dict, batch, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():  # warm-up: first-call allocations and caches
        engine(batch)
    for _ in range(runs):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine(batch)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def worker(threads: int, runs: int, batch_runs: int) -> dict:
    from squeezenet.export.photos import photo_batch

    images, _ = photo_batch(PHOTOS, "caffe", 227, BATCH)
    with tempfile.TemporaryDirectory() as folder:
        engines = _engines(Path(folder), images, threads)
        single = _interleaved_medians(engines, images[:1], runs)
        batched = _interleaved_medians(engines, images, batch_runs)
    return {name: {"latency_ms": 1000 * single[name], "images_per_s": len(images) / batched[name]} for name in engines}


def _table(results: dict[int, dict]) -> str:
    threads = sorted(results)
    names = list(results[threads[0]])
    header = "| engine | " + " | ".join(f"batch 1 ms ({t} thr) | vs eager | batch 32 img/s ({t} thr)" for t in threads) + " |"
    rule = "|---|" + "---:|---:|---:|" * len(threads)
    rows = [header, rule]
    for name in names:
        cells = []
        for t in threads:
            entry = results[t].get(name)
            if entry is None:
                cells += ["single-threaded", "", ""]
                continue
            speedup = results[t]["PyTorch eager"]["latency_ms"] / entry["latency_ms"]
            cells += [f"{entry['latency_ms']:.1f}", f"{speedup:.2f}x", f"{entry['images_per_s']:.1f}"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="batch-1 timings per engine (median)")
    parser.add_argument("--batch-runs", type=int, default=3, help="batch-32 timings per engine (median)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.runs, args.batch_runs)))
        return
    results = {}
    load_before = os.getloadavg()[0]
    for threads in args.threads:
        count = str(threads)
        environment = dict(os.environ, OMP_NUM_THREADS=count, OPENBLAS_NUM_THREADS=count, MKL_NUM_THREADS=count)
        output = subprocess.run([sys.executable, __file__, "--worker", count, "--runs", str(args.runs),
                                 "--batch-runs", str(args.batch_runs)], env=environment, check=True,
                                capture_output=True, text=True).stdout
        results[threads] = json.loads(output.strip().splitlines()[-1])
        print(f"{threads} thread(s):", json.dumps(results[threads], indent=1))
    one = results.get(1, {})
    ratio = ""
    if one:
        fast = one["C99 engine (gcc -O3 -march=native -ffp-contract=fast)"]["latency_ms"]
        portable = one["C99 engine (gcc -O2, portable)"]["latency_ms"]
        ort = one["onnxruntime fp32"]["latency_ms"]
        ratio = (f"\n\nC99 engine at batch 1, 1 thread, vs onnxruntime fp32: {fast / ort:.2f}x its time with "
                 f"`-O3 -march=native -ffp-contract=fast`, {portable / ort:.2f}x with portable `-O2` (goal: within 2x).")
    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    crowded = max(load_before, os.getloadavg()[0]) > (os.cpu_count() or 1)
    body = (
        f"Load average of this shared {os.cpu_count()}-core machine: {load} (other jobs ran alongside; "
        "compare engines within one table, not across runs)."
        + (" The machine was oversubscribed (load above its core count): the 2-thread figures mostly measure "
           "threads waiting for a core, not the engines; rerun on an idle machine." if crowded else "")
        + "\n\n"
        f"Published Deep Compression SqueezeNet v1.0 (Caffe flavour, 227x227), {BATCH} real photos from "
        f"imagenet-samples. Medians of {args.runs} batch-1 runs and {args.batch_runs} batch-32 runs per engine, "
        "timed in interleaved rounds; \"vs eager\" is PyTorch eager's batch-1 latency divided by the engine's "
        "(above 1 = faster). The C99 engine runs one image per call (its batch-32 figure is 32 calls); it keeps "
        "the weights compressed and expands one layer at a time, doing only the non-zero multiplications.\n\n"
        + _table(results) + ratio
    )
    command = "python benchmarks/bench_deploy.py " + " ".join(sys.argv[1:])
    write_section("deploy", "Deployment engines: latency and throughput", command.strip(), body)


if __name__ == "__main__":
    main()
