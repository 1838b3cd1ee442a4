"""Bytes vs. ImageNet accuracy for the published Deep Compression SqueezeNet, compressed further.

Usage:
    .venv/bin/python benchmarks/bench_imagenet_compression.py [--budgets 0.03,0.06,0.12] [--reuse]

Photos: the ImageNet sample folder (one photo per class for 500 classes), split by a fixed rule:
sorted by file name, even positions are the calibration half, odd positions the evaluation half.
Calibration (sensitivity, distillation) sees only the calibration half and never its labels;
accuracy is reported on the evaluation half (and on all photos for points that use no photos).

Points:
- ``published``: the uncompressed published model (the teacher);
- ``uniform-B``: naive k-means at B bits in every layer, no calibration (Han et al. 2016 without
  retraining); ``uniform-B (conv1/conv10 8)``: the same with the first and last layers at 8 bits;
- ``allocated+distilled @ budget``: the ``imagenet-small`` preset's recipe at several distortion
  budgets (the preset's own budget is marked).
Every point is written as a real .sqz file (rANS-coded codes and gaps, float16 codebooks and
biases, as the preset stores them); its bytes are the file's size and its accuracy is that of the
model read back from the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import write_section  # noqa: E402

from squeezenet.compress.allocation import calibration_sensitivity  # noqa: E402
from squeezenet.compress.calibration import CalibrationImages, calibration_split  # noqa: E402
from squeezenet.compress.pipeline import compress_model, encode_model  # noqa: E402
from squeezenet.compress.presets import COMPRESSION_RECIPES  # noqa: E402
from squeezenet.compress.quantize import LayerQuantization, quantize_model, round_to_float16  # noqa: E402
from squeezenet.data import CAFFE_MEAN_BGR, find_images, load_rgb  # noqa: E402
from squeezenet.models import weight_layers  # noqa: E402
from squeezenet.compress.sqz import read_sqz_model  # noqa: E402
from squeezenet.safe_io import atomic_write_bytes  # noqa: E402
from squeezenet.weights import cache_dir, load_model  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
NET = DATA / "deep-compression-squeezenet" / "compressed_SqueezeNet.net"
PHOTOS = DATA / "imagenet-samples"
RESULTS = ROOT / "results"
WARP, CROP = 256, 227


def caffe_input(crops: torch.Tensor) -> torch.Tensor:
    """uint8 RGB crops -> the published model's input: BGR on 0..255 minus the mean, no scaling."""
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float32).reshape(1, 3, 1, 1)
    return crops.flip(-3).to(torch.float32) - mean


def warped_photos(paths: tuple[Path, ...]) -> torch.Tensor:
    """Every photo warped to 256x256 as uint8 (Caffe's database form), cached on disk."""
    from torchvision.transforms import v2

    cache = cache_dir() / "bench_imagenet" / f"photos_{len(paths)}_{WARP}.pt"
    if cache.exists():
        stored = torch.load(cache, weights_only=True)
        if stored["names"] == [p.name for p in paths]:
            return stored["images"]
    transform = v2.Compose([v2.Resize((WARP, WARP)), v2.ToImage()])
    images = torch.stack([transform(load_rgb(path)) for path in paths])
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"names": [p.name for p in paths], "images": images}, cache)
    return images


def centre(images: torch.Tensor) -> torch.Tensor:
    offset = (WARP - CROP) // 2
    return images[:, :, offset : offset + CROP, offset : offset + CROP]


@torch.no_grad()
def logits_of(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    model.eval()
    crops = centre(images)
    return torch.cat([model(caffe_input(crops[s : s + batch_size])) for s in range(0, len(crops), batch_size)])


def accuracy(logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor, subset: list[int]) -> dict:
    index = torch.tensor(subset)
    top5 = logits[index].topk(5, dim=1).indices
    chosen = labels[index]
    return {
        "top1": float((top5[:, 0] == chosen).float().mean()),
        "top5": float((top5 == chosen[:, None]).any(dim=1).float().mean()),
        "agreement": float((top5[:, 0] == teacher[index].argmax(dim=1)).float().mean()),
        "images": len(subset),
    }


def write_file(model: torch.nn.Module, quantizations: dict[str, LayerQuantization], path: Path, recipe) -> dict:
    """Write the .sqz file as `squeezenet compress` writes it; returns its byte breakdown (``total`` is the file size)."""
    encoded = encode_model(model, quantizations, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, encoded.data)
    assert encoded.breakdown["total"] == path.stat().st_size
    return encoded.breakdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", default="preset,345000B,365000B,0.1,0.2",
                        help="distilled points: 'preset' (its own rule), NB (a byte target of N), or a KL budget")
    parser.add_argument("--uniform", default="8,7,6,5", help="bit widths of the naive points")
    parser.add_argument("--reuse", action="store_true", help="keep points already in results/imagenet_compression.json")
    parser.add_argument("--label", default="", help="suffix naming these points (a variant of the preset's settings)")
    parser.add_argument("--no-report", action="store_true", help="only add points to the results file")
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared, busy machine")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    preset = COMPRESSION_RECIPES["imagenet-small"]
    recipe, allocation = preset.recipe, preset.recipe.allocation

    photos = find_images(PHOTOS)
    images = warped_photos(photos.paths)
    labels = torch.tensor(photos.labels)
    calibration, evaluation = calibration_split(photos.paths)
    everything = list(range(len(photos.paths)))
    teacher = load_model(NET)
    teacher_cache = cache_dir() / "bench_imagenet" / f"teacher_{len(photos.paths)}.pt"
    if teacher_cache.exists():
        teacher_out = torch.load(teacher_cache, weights_only=True)
    else:
        teacher_out = logits_of(teacher, images)
        torch.save(teacher_out, teacher_cache)
    results_path = RESULTS / "imagenet_compression.json"
    points = json.loads(results_path.read_text())["points"] if args.reuse and results_path.exists() else {}

    def record(name: str, model, quantizations, extra: dict, sqz_path: Path | None = None) -> None:
        if quantizations is None:
            size, breakdown, decoded = NET.stat().st_size, None, model
        else:
            path = sqz_path or cache_dir() / "bench_imagenet" / "scratch.sqz"
            breakdown = write_file(model, quantizations, path, recipe)
            size, decoded = breakdown["total"], read_sqz_model(path)
        out = teacher_out if quantizations is None else logits_of(decoded, images)
        points[name] = {
            "bytes": int(size),
            "breakdown": breakdown,
            "evaluation": accuracy(out, labels, teacher_out, evaluation),
            "calibration": accuracy(out, labels, teacher_out, calibration),
            "all": accuracy(out, labels, teacher_out, everything),
            **extra,
        }
        print(name, json.dumps(points[name]), flush=True)
        RESULTS.mkdir(exist_ok=True)
        # Read-merge-write: several runs (e.g. one per budget) may add points to the same file.
        stored = json.loads(results_path.read_text())["points"] if results_path.exists() else {}
        stored[name] = points[name]
        points.update(stored)
        atomic_write_bytes(results_path, json.dumps({"points": stored}, indent=1).encode())

    if "published" not in points:
        record("published", teacher, None, {"kind": "published"})
    names = [name for name, _ in weight_layers(teacher)]
    for bits in [int(b) for b in args.uniform.split(",") if b]:
        for edges in (False, True):
            if edges and bits == 8:
                continue
            name = f"uniform-{bits}" + (" (conv1/conv10 8)" if edges else "")
            if name in points:
                continue
            widths = {"default": bits, names[0]: 8, names[-1]: 8} if edges else bits
            model = load_model(NET)
            quantizations = round_to_float16(model, quantize_model(teacher, widths))
            record(name, model, quantizations, {"kind": "uniform", "bits": widths})

    calibration_set = CalibrationImages(images[torch.tensor(calibration)], caffe_input, CROP)
    sensitivity_cache = cache_dir() / "bench_imagenet" / f"sensitivity_{allocation.sensitivity_every}_{'-'.join(map(str, allocation.candidate_bits))}.json"
    if sensitivity_cache.exists():
        stored = json.loads(sensitivity_cache.read_text())
        sensitivity = {name: {int(bits): value for bits, value in row.items()} for name, row in stored.items()}
    else:
        sensitivity = calibration_sensitivity(teacher, allocation, calibration_set, show_progress=True)
        sensitivity_cache.write_text(json.dumps(sensitivity, indent=1))
    for token in [b for b in args.budgets.split(",") if b]:
        # "preset" runs the preset's own rule (its byte target, else its budget); "NB" a byte target of N;
        # a number a KL budget.
        max_bytes = int(token[:-1]) if token.endswith("B") else None
        budget = None if token == "preset" or max_bytes is not None else float(token)
        is_preset = token == "preset"
        if is_preset:
            name = f"{preset.name} preset"
        elif max_bytes is not None:
            name = f"allocated+distilled to {max_bytes:,} B"
        else:
            name = f"allocated+distilled @ {budget:g}"
        name += args.label
        if name in points:
            continue
        start = time.perf_counter()
        if max_bytes is not None:
            rule = dataclasses.replace(allocation, max_bytes=max_bytes)
        elif budget is not None:
            rule = dataclasses.replace(allocation, distortion_budget=budget, max_bytes=None)
        else:
            rule = allocation
        result = compress_model(teacher, dataclasses.replace(recipe, allocation=rule), calibration=calibration_set,
                                sensitivity=sensitivity, show_progress=True)
        record(
            name,
            result.model,
            result.quantizations,
            {
                "kind": "preset" if is_preset else "distilled",
                "budget": budget,
                "max_bytes": max_bytes or (allocation.max_bytes if is_preset else None),
                "distill": dataclasses.asdict(recipe.distillation),
                "bits": result.allocation.bits,
                "distill_losses": result.distill_losses,
                "seconds": round(time.perf_counter() - start, 1),
            },
            (RESULTS / "imagenet-small.sqz" if not args.label else cache_dir() / "bench_imagenet" / f"preset{args.label.strip().replace(' ', '_')}.sqz")
            if is_preset
            else None,
        )
    if not args.no_report:
        write_report(json.loads(results_path.read_text())["points"], preset)


NOTES = (
    "Reading the table: one evaluation photo is 0.4 points, and top-1 on 250 photos has a standard error "
    "of about 3 points, so differences of a point or two between rows are within noise; 'agreement' (same "
    "top-1 class as the published model, on the same photos) is the paired, less noisy comparison. "
    "Distilled points see the calibration half, so their all-500 accuracy is not reported. Every row's "
    "bytes are its .sqz file's size, and its accuracy is that of the model read back from the file. "
    "Each distilled row names the distillation recipe it was measured with."
)


def write_report(points: dict, preset) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    published = points["published"]
    rows = [
        "| point | bytes | eval top-1 | Δ top-1 vs published (eval) | eval top-5 | agreement with published (eval) | all-500 top-1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, point in sorted(points.items(), key=lambda item: -item[1]["bytes"]):
        delta = 100 * (point["evaluation"]["top1"] - published["evaluation"]["top1"])
        all_top1 = f"{100 * point['all']['top1']:.1f}" if point["kind"] in ("published", "uniform") else "n/a (calibrated)"
        recipe = point.get("distill")
        if recipe:
            name += f" ({recipe['epochs']} epochs, {'centroids + biases' if recipe['train_bias'] else 'centroids'})"
        rows.append(
            f"| {name}{' **(preset)**' if point['kind'] == 'preset' else ''} | {point['bytes']:,} "
            f"| {100 * point['evaluation']['top1']:.1f} | {delta:+.1f} | {100 * point['evaluation']['top5']:.1f} "
            f"| {100 * point['evaluation']['agreement']:.1f} | {all_top1} |"
        )
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for kind, marker, label in (("uniform", "o", "naive k-means, uniform bits"), ("distilled", "s", "allocated + distilled"),
                                ("preset", "*", "imagenet-small preset"), ("published", "D", "published .net")):
        chosen = [p for p in points.values() if p["kind"] == kind]
        if chosen:
            axis.scatter([p["bytes"] / 1000 for p in chosen], [100 * p["evaluation"]["top1"] for p in chosen],
                         marker=marker, s=90 if kind == "preset" else 40, label=label)
    for name, point in points.items():
        if point["kind"] == "uniform":
            label = name.replace("uniform-", "").replace(" (conv1/conv10 8)", "*") + " bit"
            axis.annotate(label, (point["bytes"] / 1000, 100 * point["evaluation"]["top1"]), fontsize=7,
                          xytext=(4, -10), textcoords="offset points")
    axis.text(0.99, 0.02, "* conv1 and conv10 at 8 bits", transform=axis.transAxes, fontsize=7, ha="right")
    axis.axhline(100 * published["evaluation"]["top1"] - 1.0, color="grey", linestyle=":", label="published - 1 point")
    axis.axvline(400, color="grey", linestyle="--", linewidth=0.8)
    axis.set_xlabel("file size (KB)")
    axis.set_ylabel("top-1 on the evaluation half (%)")
    axis.set_title("SqueezeNet (published Deep Compression weights), bytes vs accuracy")
    axis.legend(fontsize=8, loc="center right")
    figure.tight_layout()
    figure.savefig(ROOT / "benchmarks" / "imagenet_compression.png", dpi=110)
    split = (
        f"Photos: {published['all']['images']} ImageNet samples, sorted by file name; even positions = calibration half "
        f"({published['calibration']['images']}), odd = evaluation half ({published['evaluation']['images']}). "
        f"The published model scores {100 * published['all']['top1']:.1f}% top-1 / {100 * published['all']['top5']:.1f}% top-5 "
        f"on all photos, {100 * published['evaluation']['top1']:.1f}% / {100 * published['evaluation']['top5']:.1f}% on the evaluation half. "
        f"Preset `{preset.name}`: candidate bits {preset.recipe.allocation.candidate_bits}; allocation = least summed single-layer KL "
        f"(on the centre crops of every {preset.recipe.allocation.sensitivity_every}th calibration photo) with the layers at most "
        f"{preset.recipe.allocation.max_bytes:,} bytes; then {preset.recipe.distillation}. Points `@ B` use a KL budget B instead of the byte target."
    )
    write_section(
        "imagenet_compression",
        "ImageNet: bytes vs accuracy of the compressed published SqueezeNet",
        "python benchmarks/bench_imagenet_compression.py",
        f"{split}\n\n" + "\n".join(rows) + f"\n\n{NOTES}\n\n![bytes vs accuracy](benchmarks/imagenet_compression.png)\n",
    )


if __name__ == "__main__":
    main()
