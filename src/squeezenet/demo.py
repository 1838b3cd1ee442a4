"""``make demo``: the published 0.66 MB SqueezeNet classifying real photos, with its accuracy measured.

Uses ``../shared/data`` when it is there; otherwise downloads the published model and three sample
photos from their public addresses, each checked against its sha256.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]

SAMPLES_URL = "https://raw.githubusercontent.com/EliSchwartz/imagenet-sample-images/master/"
DEMO_PHOTOS = {
    "n01440764_tench.JPEG": "98f7e89b26142f7bdb61f3a627dee89729b0bb07a29e9e7f3be9d394c00c6f01",
    "n02391049_zebra.JPEG": "ca35cfbead9763232ee94ccb8a9d3a2e2e0bff576a1e22221b210589f6c7bd42",
    "n09472597_volcano.JPEG": "7fd981c98b35c074979e024aee194e8ba574ba040defa848dde5f330d79dee48",
}
REPO = Path(__file__).resolve().parents[2]


def _inputs(data_root: Path) -> tuple[Path, Path, list[Path]]:
    """(published model, photo folder, three photos), local if possible, downloaded if not."""
    from squeezenet.compress.caffe_net import NET_SHA256, NET_URL
    from squeezenet.weights import download

    net = data_root / "deep-compression-squeezenet" / "compressed_SqueezeNet.net"
    photos = data_root / "imagenet-samples"
    if net.exists() and photos.is_dir():
        return net, photos, [photos / name for name in DEMO_PHOTOS]
    print(f"{data_root} not found: downloading the published model and {len(DEMO_PHOTOS)} sample photos")
    net = download(NET_URL, NET_SHA256, filename="compressed_SqueezeNet.net")
    files = [download(SAMPLES_URL + name, digest, filename=f"samples/{name}") for name, digest in DEMO_PHOTOS.items()]
    return net, files[0].parent, files


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="squeezenet-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    args = parser.parse_args(argv)
    from squeezenet.data import find_images
    from squeezenet.evaluate import evaluate, predict
    from squeezenet.models import count_nonzero_parameters, count_parameters
    from squeezenet.weights import class_names, load_model

    try:
        net, photo_folder, photos = _inputs(Path(args.data))
    except (OSError, ValueError) as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    model = load_model(net)
    print(f"Published Deep Compression SqueezeNet v1.0: {net.stat().st_size:,} bytes, "
          f"{count_nonzero_parameters(model):,} of {count_parameters(model):,} weights non-zero\n")

    print("Predictions (Caffe preprocessing: 227x227, BGR, mean-subtracted):")
    for prediction in predict(model, photos, "caffe", class_names(model), k=3):
        guesses = ", ".join(f"{name} {100 * p:.1f}%" for _, name, p in prediction.classes)
        print(f"  {Path(prediction.image).name:32} -> {guesses}")

    images = find_images(photo_folder)
    result = evaluate(model, images, "caffe", show_progress=sys.stderr.isatty())
    rows = [
        ("model", "photos", "bytes", "top-1", "top-5"),
        ("paper: published model on ImageNet val", "50,000", "675,763", "57.5%", "80.3%"),
        ("published model, measured here", f"{result['images']}", f"{net.stat().st_size:,}",
         f"{100 * result['top1']:.1f}%", f"{100 * result['top5']:.1f}%"),
    ]
    small = REPO / "results" / "imagenet-small.sqz"
    if small.exists():
        held_out = _not_calibrated(images)
        for name, weights in (("published model", net), ("our imagenet-small.sqz", small)):
            scored = evaluate(load_model(weights), held_out, "caffe", show_progress=sys.stderr.isatty())
            rows.append((f"{name}, photos not used to calibrate", f"{scored['images']}",
                         f"{weights.stat().st_size:,}", f"{100 * scored['top1']:.1f}%", f"{100 * scored['top5']:.1f}%"))
    print(f"\nAccuracy on real ImageNet photos (Caffe preprocessing; {result['seconds']:.0f} s for all photos):")
    print(_table(rows))
    for section in _extra_sections():
        print("\n" + section)
    print(json.dumps({"top1": result["top1"], "top5": result["top5"], "images": result["images"]}))
    return 0


def _not_calibrated(images):
    """The photos that imagenet-small.sqz was not calibrated on.

    Its preset calibrated (without labels) on the even positions, by sorted file name, of the
    one-per-class photos of the even-numbered classes (the locally available half).
    """
    from squeezenet.compress.presets import calibration_split
    from squeezenet.data import LabelledImages

    local = [i for i, label in enumerate(images.labels) if label % 2 == 0]
    calibration, _ = calibration_split([images.paths[i] for i in local])
    used = {local[i] for i in calibration}
    keep = [i for i in range(len(images.paths)) if i not in used]
    return LabelledImages(tuple(images.paths[i] for i in keep), tuple(images.labels[i] for i in keep),
                          images.class_names)


def _extra_sections() -> list[str]:
    """Committed reports shown after the live measurement (they are not recomputed here)."""
    sections = []
    for title, path in (("Table 2 (committed report, reports/table2.md)", REPO / "reports" / "table2.md"),):
        if path.exists():
            sections.append(f"{title}:\n{path.read_text().strip()}")
    return sections


if __name__ == "__main__":
    sys.exit(main())
