"""The ImageNet-track rows of Table 2: the published Deep Compression SqueezeNet and our
re-compressions of it, scored on the ImageNet sample photos.

The photos are split by the ImageNet compression preset's fixed rule
(``squeezenet.compress.presets.calibration_split``: sorted by name, odd positions evaluate), and
every model here is scored on that evaluation half only, so a model calibrated on the other half
is never scored on its own calibration photos. Preprocessing is Caffe's (warp to 256, centre crop
227, BGR minus the mean), the published model's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from squeezenet.compress.pipeline import CompressionRecipe, compress_model
from squeezenet.compress.presets import calibration_split
from squeezenet.data import LabelledImages, find_images
from squeezenet.evaluate import evaluate
from squeezenet.models import alexnet, count_parameters
from squeezenet.reproduce.runs import RunCache
from squeezenet.weights import load_model

__all__ = ["imagenet_rows", "evaluation_half"]


def evaluation_half(photos: str | Path) -> LabelledImages:
    images = find_images(photos)
    _, evaluation = calibration_split(images.paths)
    chosen = sorted(evaluation)
    return LabelledImages(tuple(images.paths[i] for i in chosen), tuple(images.labels[i] for i in chosen),
                          images.class_names)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _scored(cache: RunCache, path: Path, photos: LabelledImages) -> dict:
    settings = {"step": "imagenet-eval", "file_sha256": _sha256(path),
                "photos": [p.name for p in photos.paths], "preprocess": "caffe"}

    def compute(folder: Path) -> dict:
        result = evaluate(load_model(path), photos, "caffe", show_progress=False)
        return {"top1": result["top1"], "top5": result["top5"], "images": result["images"]}

    return cache.run("imagenet-eval", settings, compute).result


def imagenet_rows(cache: RunCache, photos: str | Path, net: str | Path, sqz_files: list[str | Path],
                  work: Path) -> list[dict]:
    """Rows for the published .net, its lossless rANS re-encoding as .sqz, and each given .sqz."""
    net = Path(net)
    if not net.is_file():
        raise FileNotFoundError(f"published model not found: {net}")
    half = evaluation_half(photos)
    alexnet_bytes = 4 * count_parameters(alexnet())  # torchvision AlexNet, 61.1M float32 parameters
    model = load_model(net)
    original = 4 * count_parameters(model)

    def row(approach: str, data_type: str, path: Path, note: str) -> dict:
        size = path.stat().st_size
        scored = _scored(cache, path, half)
        return {"track": f"ImageNet ({scored['images']} sample photos)", "architecture": "SqueezeNet v1.0",
                "approach": approach, "data_type": data_type, "original_bytes": original, "compressed_bytes": size,
                "reduction_vs_alexnet": alexnet_bytes / size, "top1": scored["top1"], "top5": scored["top5"],
                "file": str(path), "note": note}

    rows = [row("Deep Compression (published .net)", "8 bit", net, "Han et al.'s release; paper: 57.5% / 80.3% on val")]
    work.mkdir(parents=True, exist_ok=True)
    reencoded = work / "published-reencoded-ans.sqz"
    # The code and settings of `squeezenet compress --weights NET --bits 8` (rANS, the per-layer gap
    # width that codes smallest), so the row and the CLI give the same bytes. No layer of the
    # published model has more than 255 distinct non-zero values, so 8-bit k-means returns its
    # codebooks exactly and the re-encoding stays lossless.
    compress_model(model, CompressionRecipe(bits=8, coder="ans"), reencoded)
    rows.append(row("Deep Compression, re-encoded .sqz (rANS, lossless)", "8 bit", reencoded,
                    "same weights, our container and coder (as `squeezenet compress --bits 8`)"))
    for path in map(Path, sqz_files):
        if not path.is_file():
            raise FileNotFoundError(f".sqz file not found: {path}")
        rows.append(row(f"Our re-compression ({path.name})", "mixed bit", path, "see BENCHMARKS.md imagenet_compression"))
    return rows
