"""Time to accuracy: the 32x32 SqueezeNet on CIFAR-10 (validation: the last 500 images per class of train).

Usage:
    .venv/bin/python benchmarks/bench_time_to_accuracy.py [--data ../shared/data/cifar10/train]
        [--runs "squeezenet_cifar_bn:36,squeezenet_cifar_bn_wide:55:--eval-flip"] [--processes 2]
        [--out runs/time-to-accuracy]
    .venv/bin/python benchmarks/bench_time_to_accuracy.py --report-only   # redraw from the run folders

Each entry of ``--runs`` (architecture:epochs, then optionally ':' and further `squeezenet train`
options) is one complete training run: the one-cycle schedule needs its length in advance, so a short
run aims at the 20-minute goal and longer ones at the 45-minute goal. v1.1's pool layout is the
fastest per epoch; v1.0's (fire5-fire8 at 8x8 pixels) costs 1.6x per image and keeps more spatial
detail; the wide variant (1.5x the Fire widths) is what the GPU recipe sweep chose for 45 minutes,
and its simple-bypass form (Section 6) is the 45-minute recipe.
With ``--processes 2`` the runs use torchrun (two 1-thread processes, gloo DDP): on this shared
2-core machine two processes beat two threads by far (see ``set_threads`` in train_runtime.py).
Minutes on the curve are training wall-clock (steps + per-epoch evaluation, from the run's own
metrics log); process start and the one-time JPEG decode are listed separately. Every final model is
also re-scored without test-time augmentation, with the flip, and with the flip plus 2-pixel shifts, so
runs that validated differently compare on the same footing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PLOT = REPO / "benchmarks" / "time_to_accuracy.png"
# The 20-minute run, and the 45-minute recipe: the 1.5x-wide Fires that led the GPU recipe sweep
# (sweep_recipes.py) with the paper's simple bypass, scored with flip + shift test-time augmentation.
# Both as recorded in BENCHMARKS.md.
DEFAULT_RUNS = ("squeezenet_cifar_bn:36,squeezenet_cifar_bn_wide_simple_bypass:54:"
                "--dropout 0 --label-smoothing 0.2 --eval-flip --eval-shift 2 --eval-every 4")


def _run(arch: str, data: str, epochs: int, processes: int, out: Path, train_args: list[str]) -> float:
    """One training run; returns its wall-clock seconds from process start to exit."""
    bin_dir = Path(sys.executable).parent
    if processes > 1:
        prefix = [str(bin_dir / "torchrun"), "--standalone", "--nproc-per-node", str(processes), "-m"]
    else:
        prefix = [sys.executable, "-m"]
    command = [*prefix, "squeezenet", "train", "--arch", arch, "--data", data, "--val-split", "500",
               "--epochs", str(epochs), "--preset", "fast", "--threads", "1", "--out", str(out), "--json", *train_args]
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"training failed: {finished.stderr[-2000:]}")
    return time.perf_counter() - start


def _parse_run(entry: str) -> tuple[str, int, str]:
    """'arch:epochs' or 'arch:epochs:further train options' -> (arch, epochs, options)."""
    arch, epochs, *options = entry.strip().split(":", 2)
    return arch, int(epochs), options[0].strip() if options else ""


def _minutes_to(history: list[dict], target: float) -> float | None:
    for record in history:
        if record["top1"] >= target:
            return record["seconds"] / 60
    return None


def _recipe(folder: Path) -> str:
    """The run's options beyond the fast preset, as recorded when it was started."""
    path = folder / "train_args.txt"
    extra = path.read_text().strip() if path.exists() else ""
    return f"`{extra}`" if extra else "fast preset"


def _load_note(folder: Path) -> str:
    path = folder / "load_before.txt"
    return f"load {float(path.read_text()):.2f} before start" if path.exists() else "load not recorded"


# Test-time augmentation settings every final model is re-scored with, whatever its run validated with.
SCORINGS = {"plain": dict(flip=False, shift=0), "flip": dict(flip=True, shift=0), "flip+shift 2": dict(flip=True, shift=2)}


@functools.cache
def _validation_set(data: str, input_size: int):
    """The benchmark's 5000 validation images, loaded once for all the runs re-scored."""
    from squeezenet.train import TrainConfig, load_datasets

    return load_datasets(TrainConfig(data=data, val_split=500, show_progress=False), input_size)[1]


def _rescored(folder: Path, data: str) -> dict[str, float] | None:
    """Top-1 of the run's final.pth on the same 5000 validation images under each of SCORINGS (bf16
    autocast, as the runs validated on this CPU); cached beside the checkpoint, keyed by its size and time."""
    checkpoint = folder / "final.pth"
    if not checkpoint.exists():
        return None
    stat = checkpoint.stat()
    key = f"{stat.st_size}:{stat.st_mtime_ns}"
    cache = folder / "rescored.json"
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("key") == key:
        return cached["top1"]
    import torch

    from squeezenet.train import evaluate_accuracy
    from squeezenet.weights import load_model

    model = load_model(checkpoint)
    val_set = _validation_set(data, model.spec.input_size)
    top1 = {name: evaluate_accuracy(model, val_set, autocast_dtype=torch.bfloat16, **scoring)["top1"]
            for name, scoring in SCORINGS.items()}
    cache.write_text(json.dumps({"key": key, "top1": top1}) + "\n")
    return top1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/cifar10/train"))
    parser.add_argument("--runs", default=DEFAULT_RUNS,
                        help="comma-separated architecture:epochs[:further train options], one training run each")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "runs" / "time-to-accuracy"))
    parser.add_argument("--report-only", action="store_true", help="do not train; redraw from existing runs")
    parser.add_argument("--note", default="", help="a sentence for the report (e.g. what else ran meanwhile)")
    args = parser.parse_args()
    runs = [_parse_run(entry) for entry in args.runs.split(",")]
    if len({(arch, epochs) for arch, epochs, _ in runs}) < len(runs):
        raise SystemExit("each architecture:epochs may appear once in --runs (it names the run folder)")
    out = Path(args.out)
    walls: dict[str, float | None] = {}
    for arch, epochs, train_args in runs:
        folder = out / f"{arch}-{epochs}"
        if not args.report_only:
            load = os.getloadavg()[0]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "train_args.txt").write_text(train_args + "\n")
            walls[folder.name] = _run(arch, args.data, epochs, args.processes, folder, train_args.split())
            (folder / "wall_seconds.txt").write_text(f"{walls[folder.name]:.1f}\n")
            (folder / "load_before.txt").write_text(f"{load:.2f}\n")
        elif (folder / "wall_seconds.txt").exists():
            walls[folder.name] = float((folder / "wall_seconds.txt").read_text())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    rows = ["| run | recipe | epochs | final top-1 | top-5 | minutes to 85% | minutes to 90% | training minutes | "
            "wall minutes (incl. start) | images/s (mean) | machine | final model re-scored: "
            + " / ".join(SCORINGS) + " |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    curves = []
    for arch, epochs, _ in runs:
        folder = out / f"{arch}-{epochs}"
        history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        recipe = _recipe(folder)
        rate = sum(r["images_per_second"] for r in history) / len(history)
        done = "" if (folder / "final.pth").exists() else f" (stopped after {len(history)})"
        history = [r for r in history if "top1" in r]  # runs with --eval-every score some epochs only
        minutes = [r["seconds"] / 60 for r in history]
        top1 = [100 * r["top1"] for r in history]
        axes.plot(minutes, top1, marker="o", markersize=3, label=f"{arch}, {epochs}-epoch one-cycle"
                  + (", low-res first phase" if "--low-res-side" in recipe else "")
                  + (", flip" if "--eval-flip" in recipe else "") + (" + shift" if "--eval-shift" in recipe else "")
                  + (" TTA" if "--eval-flip" in recipe or "--eval-shift" in recipe else ""))
        to85, to90 = _minutes_to(history, 0.85), _minutes_to(history, 0.90)
        wall = walls.get(folder.name)
        rescored = _rescored(folder, args.data)
        rows.append(f"| {folder.name} | {recipe} | {epochs}{done} | {top1[-1]:.2f}% | {100 * history[-1]['top5']:.2f}% | "
                    f"{'not reached' if to85 is None else f'{to85:.1f}'} | "
                    f"{'not reached' if to90 is None else f'{to90:.1f}'} | {minutes[-1]:.1f} | "
                    f"{'n/a' if wall is None else f'{wall / 60:.1f}'} | {rate:.0f} | {_load_note(folder)} | "
                    + ("n/a" if rescored is None else " / ".join(f"{100 * rescored[name]:.2f}%" for name in SCORINGS))
                    + " |")
        curves.append(f"{folder.name}: " + ", ".join(f"{m:.1f} min {a:.1f}%" for m, a in zip(minutes, top1)))
    axes.axhline(85, color="grey", linestyle="--", linewidth=0.8)
    axes.axhline(90, color="grey", linestyle=":", linewidth=0.8)
    axes.axvline(20, color="grey", linestyle="--", linewidth=0.8)
    axes.axvline(45, color="grey", linestyle=":", linewidth=0.8)
    axes.set_xlabel("training minutes (2-core AMD EPYC)")
    axes.set_ylabel("CIFAR-10 validation top-1 (%)")
    axes.set_title("32x32 SqueezeNet on CIFAR-10: time to accuracy")
    axes.set_ylim(30, 100)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)

    body = (
        f"Fast preset (Nesterov SGD, one-cycle, label smoothing 0.1, dropout 0.5 before conv10, batch 512, bf16 "
        f"autocast, channels_last, uint8 decoded cache), {args.processes} process(es) x 1 thread; the recipe column "
        f"lists a run's changes to it. Validation: the last 500 images per class of CIFAR-10 train (5000 images), "
        f"plain centre input; with `--eval-flip` each image's logits are summed with its mirror image's, with "
        f"`--eval-shift 2` also with copies moved 2 pixels up-left and down-right (weights 1/4 each, the image 1/2): "
        f"test-time augmentation, counted in the run's minutes. Training on the other 45000. The machine column gives "
        f"the 1-minute load average before the run (0-1: quiet). The last column re-scores each final model on the "
        f"same images with no augmentation, the flip, and the flip plus the shifts, whatever the run validated with."
        f"\n\n"
        + "\n".join(rows) + (f"\n\n{args.note}" if args.note else "")
        + "\n\nCurve (accuracy after each validated epoch: every epoch, or every K-th with --eval-every K):\n\n" + "\n".join(f"- {c}" for c in curves)
        + f"\n\n![time to accuracy](benchmarks/{PLOT.name})\n"
    )
    command = "python benchmarks/bench_time_to_accuracy.py " + shlex.join(sys.argv[1:])
    write_section("time_to_accuracy", "Time to accuracy: 32x32 SqueezeNet on CIFAR-10 (CPU)", command.strip(), body)
    print(body)


if __name__ == "__main__":
    main()
