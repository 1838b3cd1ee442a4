"""int8 post-training quantization on ImageNet photos: range rules, bias correction, QDQ ONNX parity.

Usage: .venv/bin/python benchmarks/bench_int8.py [--models net small] [--rules minmax percentile mse entropy]
                                                 [--evaluate-every 4] [--cached-only] [--write]

Photos: imagenet-samples and imagenet-val-extra (1,124 labelled photos), sorted by file name; the
split was fixed before any result was seen: position % 4 == 0 calibrates (281 photos), the rest
evaluate (843). ``--evaluate-every K`` keeps every K-th evaluation photo (the int8 reference engine
runs at about a second per photo on the shared 2-core machine). Preprocessing: Caffe's
(``squeezenet.data.preprocess("caffe")``); the resized, cropped uint8 photos are cached in
build/int8/ and turned into floats by the preset's own remaining transforms, so the input equals
the preset's bit for bit. Every model's logits (and its calibration statistics) are cached per
configuration in build/int8/, so an interrupted run resumes; ``--cached-only`` reports just the
configurations already computed.

Per model, range rule and bias correction: int8 top-1 against fp32 top-1 on the same photos, the
top-1 agreement with fp32, and the paired difference (photos only int8 gets right minus photos only
fp32 gets right). Every rule runs with the weight bias correction (``weights``, Nagel et al.); the
default rule also with the default correction (``sequential``, `squeezenet.int8.correction`, fitted
on the calibration photos); other configurations are listed when cached. For the default
configuration, also the QDQ ONNX export (uint8, `squeezenet.int8.onnx_qdq`) run by onnxruntime:
top-1, agreement with the reference engine and the largest logit difference. The classifier's
output always keeps its full range; cache names marked ``full`` hold those runs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "src"))
from report import write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FOLDERS = [DATA / "imagenet-samples", DATA / "imagenet-val-extra"]
MODELS = {
    "net": DATA / "deep-compression-squeezenet" / "compressed_SqueezeNet.net",
    "small": ROOT / "results" / "imagenet-small.sqz",
}
CACHE = ROOT / "build" / "int8"
CALIBRATE_EVERY = 4
# Cache names per bias correction (the first two predate sequential correction).
# "seq2bc": the sequential correction on top of the weight correction, as Int8Model.calibrated builds it.
CACHE_TAGS = {"weights": "bc", "none": "nobc", "sequential": "seq2bc"}
QDQ_TAGS = {"weights": "", "sequential": "-seq2bc"}


def labelled_photos() -> tuple[list[Path], np.ndarray]:
    from squeezenet.data import find_images

    pairs = []
    for folder in FOLDERS:
        images = find_images(folder)
        pairs += list(zip(images.paths, images.labels))
    pairs.sort(key=lambda pair: (pair[0].name, str(pair[0])))
    return [path for path, _ in pairs], np.array([label for _, label in pairs], dtype=np.int64)


def preprocessed(paths: list[Path]) -> np.ndarray:
    """float32 [N, 3, 227, 227]: preprocess("caffe"), with its resize-and-crop half cached as uint8."""
    import torch

    from squeezenet.data import load_rgb, preprocess

    transform = preprocess("caffe")
    geometric, numeric = transform.transforms[:2], transform.transforms[2:]
    key = hashlib.sha256("\n".join(str(path) for path in paths).encode()).hexdigest()[:12]
    cached = CACHE / f"photos-caffe-227-{key}.npy"
    if cached.exists():
        crops = np.load(cached)
    else:
        crops = []
        for path in paths:
            image = load_rgb(path)
            for step in geometric:
                image = step(image)
            crops.append(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
        crops = np.stack(crops)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(cached, crops)
    finish = type(transform)(numeric)
    return np.stack([finish(torch.from_numpy(crop)).numpy() for crop in crops]).astype(np.float32)


def cached_logits(name: str, compute, images: np.ndarray, batch: int = 8) -> np.ndarray:
    path = CACHE / f"{name}.npy"
    if path.exists():
        return np.load(path)
    started = time.time()
    logits = np.concatenate([compute(images[start:start + batch]) for start in range(0, len(images), batch)])
    np.save(path, logits)
    print(f"  {name}: {len(images)} photos in {time.time() - started:.0f} s", flush=True)
    return logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--rules", nargs="+", default=None)
    parser.add_argument("--evaluate-every", type=int, default=1)
    parser.add_argument("--cached-only", action="store_true", help="report the configurations already cached")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True,
                        help="write the BENCHMARKS.md section (on by default, as `make bench-long` runs it)")
    args = parser.parse_args()

    from squeezenet.int8 import DEFAULT_BIAS_CORRECTION, DEFAULT_RANGE_RULE, RANGE_RULES, Int8Model
    from squeezenet.compress.sqz import read_sqz
    from squeezenet.export.graph import CAFFE_SQUEEZENET_V1_0
    from squeezenet.runtime_numpy import NumpyModel, read_compressed

    rules = args.rules or list(RANGE_RULES)
    paths, labels = labelled_photos()
    positions = np.arange(len(paths))
    calibration_rows = positions[positions % CALIBRATE_EVERY == 0]
    evaluation_rows = positions[positions % CALIBRATE_EVERY != 0][:: args.evaluate_every]
    truth = labels[evaluation_rows]
    suffix = f"every{args.evaluate_every}"
    photos: dict[str, np.ndarray] = {}

    def images(part: str) -> np.ndarray:
        if not photos:
            everything = preprocessed(paths)
            photos.update(calibration=everything[calibration_rows], evaluation=everything[evaluation_rows])
        return photos[part]

    def logits_of(name: str, model) -> np.ndarray | None:
        if (CACHE / f"{name}.npy").exists():
            return np.load(CACHE / f"{name}.npy")
        return None if args.cached_only else cached_logits(name, model(), images("evaluation"))

    rows = []
    for model_name in args.models:
        path = MODELS[model_name]
        network, layers = read_compressed(path)
        spec = CAFFE_SQUEEZENET_V1_0 if path.suffix == ".net" else read_sqz(path)[0]
        print(f"{model_name}: {path.name}", flush=True)
        fp32 = logits_of(f"{model_name}-fp32-{suffix}", lambda: NumpyModel(network, layers))
        calibration = []
        quantizations = {}  # the sequential correction is an int8 pass over the calibration photos: once

        def quantization(rule: str, correction: str):
            if not calibration:
                calibration.append(_calibration(model_name, network, layers, images("calibration")))
            if (rule, correction) in quantizations:
                return quantizations[rule, correction]
            started = time.time()
            quantized = Int8Model.from_calibration(network, layers, calibration[0], images("calibration"),
                                                   range_rule=rule, bias_correction=correction).quantization
            print(f"  quantized ({rule}, bias correction {correction}): {time.time() - started:.0f} s", flush=True)
            quantizations[rule, correction] = quantized
            return quantized

        # Every rule with the weight bias correction; the default rule also with the default correction;
        # any other configuration an earlier run measured.
        configurations = [(rule, "weights") for rule in rules] + [
            (rule, correction) for rule in rules for correction in ("sequential", "none")
            if (rule, correction) == (DEFAULT_RANGE_RULE, DEFAULT_BIAS_CORRECTION)
            or (CACHE / f"{model_name}-int8-{rule}-full-{CACHE_TAGS[correction]}-{suffix}.npy").exists()]
        for rule, correction in configurations:
            # "full": the classifier's output keeps its full range (LOGITS_RANGE_RULE); earlier caches clipped it.
            tag = f"{model_name}-int8-{rule}-full-{CACHE_TAGS[correction]}-{suffix}"
            logits = logits_of(tag, lambda: Int8Model(network, quantization(rule, correction)))
            if logits is None or fp32 is None:
                continue
            row = {"model": path.name, "rule": rule, "bias correction": correction, **_compare(logits, fp32, truth)}
            if correction != "none":
                for kernels in ("fused", "float"):
                    name = f"{model_name}-qdq-uint8-{kernels}-{rule}-full{QDQ_TAGS[correction]}-{suffix}"
                    if (rule, correction) == (DEFAULT_RANGE_RULE, DEFAULT_BIAS_CORRECTION):
                        runtime = logits_of(name, lambda: _qdq_model(model_name, spec, layers,
                                                                     quantization(rule, correction), kernels))
                    else:  # other rules: reported when an earlier run computed them
                        runtime = np.load(CACHE / f"{name}.npy") if (CACHE / f"{name}.npy").exists() else None
                    if runtime is not None:
                        row[f"qdq {kernels}"] = (float((runtime.argmax(1) == truth).mean()),
                                                 float((runtime.argmax(1) == logits.argmax(1)).mean()),
                                                 float(np.abs(runtime - logits).max()))
            rows.append(row)
            print("  ", row, flush=True)
    body = _table(rows, len(calibration_rows), len(evaluation_rows))
    print(body)
    if args.write:
        command = "python benchmarks/bench_int8.py " + " ".join(sys.argv[1:])
        write_section("int8", "int8 post-training quantization (exact integer reference engine)", command, body)


def _calibration(model_name: str, network, layers, images: np.ndarray):
    """The fp32 statistics of the calibration photos, cached (pickle) in build/int8/."""
    import pickle

    from squeezenet.int8 import calibrate

    path = CACHE / f"{model_name}-calibration-{len(images)}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    started = time.time()
    calibration = calibrate(network, layers, images)
    print(f"  calibration: {len(images)} photos in {time.time() - started:.0f} s", flush=True)
    path.write_bytes(pickle.dumps(calibration))
    return calibration


def _qdq_model(model_name: str, spec: dict, layers, quantization, kernels: str):
    from squeezenet.int8.onnx_qdq import export_onnx_qdq

    onnx_path = CACHE / f"{model_name}-qdq-{quantization.range_rule}-{quantization.bias_correction}.onnx"
    export_onnx_qdq(spec, layers, quantization, onnx_path)
    session = _session(onnx_path, fused=kernels == "fused")
    return lambda x: session.run(["logits"], {"input": x})[0]


def _session(path: Path, *, fused: bool):
    """onnxruntime CPU session; ``fused=False`` keeps QuantizeLinear/DequantizeLinear as float ops
    (the QDQ graph's ONNX semantics) instead of fusing them into onnxruntime's int8 kernels."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if not fused:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _compare(int8: np.ndarray, fp32: np.ndarray, truth: np.ndarray) -> dict:
    int8_right, fp32_right = int8.argmax(1) == truth, fp32.argmax(1) == truth
    return {
        "photos": len(truth),
        "fp32 top-1": float(fp32_right.mean()),
        "int8 top-1": float(int8_right.mean()),
        "agreement": float((int8.argmax(1) == fp32.argmax(1)).mean()),
        "only int8 right": int(np.sum(int8_right & ~fp32_right)),
        "only fp32 right": int(np.sum(fp32_right & ~int8_right)),
    }


def _paired_error(row: dict) -> float:
    """Standard error, in points, of the paired top-1 difference (from the photos where the two disagree on correctness)."""
    return 100 * (row["only int8 right"] + row["only fp32 right"]) ** 0.5 / row["photos"]


def _table(rows: list[dict], calibration_count: int, evaluation_count: int) -> str:
    lines = [
        f"Calibration: {calibration_count} photos (every 4th by file name); evaluation: {evaluation_count} other photos; "
        "Caffe preprocessing. Paired difference = int8 top-1 - fp32 top-1 on the same photos "
        "(photos only int8 gets right minus photos only fp32 gets right), ± its standard error (sqrt(only int8 right + "
        "only fp32 right) / photos). Bias correction: `weights` = Nagel et al.'s "
        "for the weight error; `sequential` = each layer's mean pre-activation matched to fp32's on the calibration "
        "photos, layer after layer through the int8 network (`squeezenet.int8.correction`); `none`.",
        "",
        "| model | range rule | bias correction | photos | fp32 top-1 | int8 top-1 | difference ± s.e. (points) | "
        "only int8 / only fp32 right | top-1 agreement with fp32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    qdq_rows = []
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['rule']} | {row['bias correction']} | {row['photos']} | "
            f"{100 * row['fp32 top-1']:.2f}% | {100 * row['int8 top-1']:.2f}% | "
            f"{100 * (row['int8 top-1'] - row['fp32 top-1']):+.2f} ± {_paired_error(row):.2f} | "
            f"{row['only int8 right']} / {row['only fp32 right']} | "
            f"{100 * row['agreement']:.2f}% |"
        )
        for kernels in ("fused", "float"):
            if f"qdq {kernels}" in row:
                top1, agreement, difference = row[f"qdq {kernels}"]
                qdq_rows.append(f"| {row['model']} | {row['rule']} | {row['bias correction']} | {kernels} | "
                                f"{row['photos']} | {100 * top1:.2f}% | "
                                f"{100 * row['int8 top-1']:.2f}% | {100 * agreement:.2f}% | {difference:.3f} |")
    lines += [
        "",
        "QDQ ONNX export (same scales) run by onnxruntime: `fused` = default session (QDQ fused into its int8 "
        "kernels), `float` = `session.disable_quant_qdq` (QuantizeLinear/DequantizeLinear evaluated as written).",
        "",
        "| model | range rule | bias correction | onnxruntime kernels | photos | QDQ top-1 | reference int8 top-1 | "
        "top-1 agreement with reference | max logit difference |",
        "|---|---|---|---|---|---|---|---|---|",
        *qdq_rows,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
