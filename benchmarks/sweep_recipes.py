"""Recipe sweep for the 32x32 SqueezeNet on CIFAR-10: which architecture and settings reach 90%
within the epochs that 45 minutes of this 2-core CPU can train?

One full CPU try costs 45 minutes of the only two cores, so the candidates run side by side on a
GPU (the `device` tool lends one to some sessions), each as its own process, with the epochs that
the CPU budget allows. The GPU only shortens the search: the chosen recipe is then run and timed
on the CPU by bench_time_to_accuracy.py, and that run is the claim.

Usage (on the GPU machine; 16 cores there):
    python benchmarks/sweep_recipes.py --data DIR/cifar10/train --out OUT --parallel 6 --time-limit 360
    python benchmarks/sweep_recipes.py --out OUT --report   # summary of a finished sweep, into BENCHMARKS.md

Every candidate logs one JSON line per epoch: the trainer's record plus ``top1_flip`` (validation
with the mirror image's logits added). The validation split is the benchmark's: the last 500 images
of each class of ``train``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# CPU seconds per epoch (2 one-thread processes, bf16, 45,000 images, evaluation included), from
# single-thread bf16 step timings at batch 256 on this machine relative to the measured
# squeezenet_cifar_bn run (1,570 images/s; 873 images/s per thread in the step timing):
#   v1.1 layout 873, SR 0.25: 765, SR 0.25 + 75% 3x3: 619, v1.0 layout 571, e_i x1.5: 553.
# Epochs below fill about 41 of the 45 minutes, leaving room for process start and decoding.
CANDIDATES: list[dict] = [
    dict(name="v11-sr25-e72-nodrop", model=dict(squeeze_ratio=0.25), epochs=72, train=dict(dropout=0.0)),
    dict(name="v11-e85", model={}, epochs=85, train={}),
    dict(name="v10-e52", model=dict(pools="1.0"), epochs=52, train={}),
    dict(name="v11-e85-nodrop", model={}, epochs=85, train=dict(dropout=0.0)),
    dict(name="v11-sr25-e72", model=dict(squeeze_ratio=0.25), epochs=72, train={}),
    dict(name="v11-w192-e55", model=dict(base_e=192, incr_e=192), epochs=55, train={}),
    dict(name="v10-e52-nodrop", model=dict(pools="1.0"), epochs=52, train=dict(dropout=0.0)),
    dict(name="v11-sr25-pct75-e58", model=dict(squeeze_ratio=0.25, pct3x3=0.75), epochs=58, train={}),
    dict(name="v11-w192-e55-nodrop", model=dict(base_e=192, incr_e=192), epochs=55, train=dict(dropout=0.0)),
    dict(name="v11-sr25-e72-nodrop-ls02", model=dict(squeeze_ratio=0.25), epochs=72,
         train=dict(dropout=0.0, label_smoothing=0.2)),
    # Second round, after the first showed that width pays (e_i x1.5 led at 55 epochs): the
    # widths and dropout at epochs that leave the CPU run a margin (v1.1 layout, e_i x2: 379/thread).
    dict(name="v11-w192-e50-nodrop", model=dict(base_e=192, incr_e=192), epochs=50, train=dict(dropout=0.0)),
    dict(name="v11-w192-e50", model=dict(base_e=192, incr_e=192), epochs=50, train={}),
    dict(name="v11-w256-e38-nodrop", model=dict(base_e=256, incr_e=256), epochs=38, train=dict(dropout=0.0)),
    dict(name="v11-w192-e50-nodrop-ls02", model=dict(base_e=192, incr_e=192), epochs=50,
         train=dict(dropout=0.0, label_smoothing=0.2)),
    # Twice the steps: last, so a time limit cuts these first.
    dict(name="v11-e85-b256", model={}, epochs=85, train=dict(batch_size=256, lr=0.2)),
    dict(name="v11-sr25-e72-nodrop-b256", model=dict(squeeze_ratio=0.25), epochs=72,
         train=dict(dropout=0.0, batch_size=256, lr=0.2)),
]


def run_candidate(candidate: dict, data: str, out: Path, device: str, val_split: int) -> None:
    """Train one candidate in this process, logging every epoch to ``out/epochs.jsonl``."""
    from squeezenet.train import (build_training_model, config_for_preset, evaluate_accuracy, load_datasets,
                                  train_model, training_autocast_dtype)

    config = config_for_preset("fast", arch="squeezenet_cifar_bn", data=data, val_split=val_split,
                               epochs=candidate["epochs"], device=device, threads=2, show_progress=False,
                               out=str(out / "run"), **candidate["train"])
    train_set, val_set = load_datasets(config, 32)
    # The trainer's own model construction; the candidate's metaparameters go to squeezenet_cifar.
    model = build_training_model(config, train_set.num_classes, **candidate["model"])
    start = time.perf_counter()
    with open(out / "epochs.jsonl", "a") as log:

        def on_epoch(record: dict, module) -> None:
            # The precision the trainer's own validation used for the plain figure.
            module_device = next(module.parameters()).device
            flipped = evaluate_accuracy(module, val_set, device=module_device, flip=True,
                                        autocast_dtype=training_autocast_dtype(config, module_device))
            log.write(json.dumps({**record, "top1_flip": flipped["top1"], "wall": time.perf_counter() - start}) + "\n")
            log.flush()

        result = train_model(model, train_set, val_set, config, on_epoch=on_epoch)
    result.pop("history", None)
    (out / "result.json").write_text(json.dumps({**candidate, **result}, default=str))


def sweep(data: str, out: Path, parallel: int, time_limit: float, device: str, names: list[str] | None,
          val_split: int, max_epochs: int | None) -> None:
    import torch

    from squeezenet.train import config_for_preset, load_datasets

    out.mkdir(parents=True, exist_ok=True)
    accelerator = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "CPU"
    (out / "machine.json").write_text(json.dumps({
        "machine": f"{accelerator}, {os.cpu_count()} CPU cores, torch {torch.__version__}; "
                   f"up to {parallel} candidates at once",
        "date": datetime.date.today().isoformat()}))

    # Decode the JPEGs once, with every core, before the candidates read the cache.
    load_datasets(config_for_preset("fast", data=data, val_split=val_split, workers=os.cpu_count() or 2,
                                    show_progress=False), 32)
    chosen = [c for c in CANDIDATES if names is None or c["name"] in names]
    if max_epochs is not None:  # smoke tests
        chosen = [{**c, "epochs": min(c["epochs"], max_epochs)} for c in chosen]
    pending, running, deadline = list(chosen), {}, time.monotonic() + time_limit
    while (pending or running) and time.monotonic() < deadline:
        while pending and len(running) < parallel:
            candidate = pending.pop(0)
            folder = out / candidate["name"]
            folder.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, __file__, "--one", json.dumps(candidate), "--data", data,
                       "--out", str(folder), "--device", device, "--val-split", str(val_split)]
            env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "2"}
            running[candidate["name"]] = subprocess.Popen(
                command, env=env, stdout=open(folder / "log.txt", "w"), stderr=subprocess.STDOUT)
        for name, process in list(running.items()):
            if process.poll() is not None:
                print(f"{name}: exit {process.returncode}", flush=True)
                del running[name]
        time.sleep(2)
    for name, process in running.items():
        process.kill()
        print(f"{name}: stopped at the time limit", flush=True)
    report(out)


def report(out: Path, write: bool = False) -> None:
    """One line per candidate: epochs done, final and best top-1, with and without the flip;
    with ``write``, also the ``recipe_sweep`` section of BENCHMARKS.md."""
    rows = []
    for candidate in CANDIDATES:
        log = out / candidate["name"] / "epochs.jsonl"
        if not log.exists():
            continue
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        if not records:
            continue
        last = records[-1]
        rows.append(dict(name=candidate["name"], model=candidate["model"], train=candidate["train"],
                         epochs_done=last["epoch"], epochs=candidate["epochs"], top1=last["top1"],
                         top1_flip=last["top1_flip"], best=max(r["top1"] for r in records),
                         wall_min=last["wall"] / 60, images_per_second=last["images_per_second"]))
    print(f"{'candidate':28} {'epochs':>7} {'top1':>7} {'flip':>7} {'best':>7} {'min':>6} {'img/s':>7}")
    for row in rows:
        print(f"{row['name']:28} {row['epochs_done']:>3}/{row['epochs']:<3} {100 * row['top1']:6.2f}% "
              f"{100 * row['top1_flip']:6.2f}% {100 * row['best']:6.2f}% {row['wall_min']:6.1f} "
              f"{row['images_per_second']:7.0f}")
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    if write:
        _write_benchmarks(out, rows)


def _write_benchmarks(out: Path, rows: list[dict]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import write_section

    def settings(mapping: dict) -> str:
        return ", ".join(f"{key} {value}" for key, value in mapping.items()) or "-"

    table = ["| candidate | Fire metaparameters | changes to the fast preset | epochs | top-1 | top-1, flip TTA |",
             "|---|---|---|---:|---:|---:|"]
    finished = [row for row in rows if row["epochs_done"] == row["epochs"]]
    stopped = [f"{row['name']} ({row['epochs_done']} of {row['epochs']} epochs)" for row in rows if row not in finished]
    for row in sorted(finished, key=lambda r: -r["top1_flip"]):
        table.append(f"| {row['name']} | {settings(row['model'])} | {settings(row['train'])} | {row['epochs']} | "
                     f"{100 * row['top1']:.2f}% | {100 * row['top1_flip']:.2f}% |")
    body = (
        "Which 32x32 SqueezeNet recipe reaches 90% on CIFAR-10 within 45 minutes of the 2-core CPU? Each "
        "candidate trains for the epochs that about 41 CPU minutes allow (from measured CPU step times, "
        "see CANDIDATES in the script), one seed, on a lent GPU; bf16 autocast as on the CPU. Validation: "
        "the last 500 images per class of train. `flip TTA` adds the mirror image's logits.\n\n"
        + "\n".join(table)
        + (f"\n\nStopped by the sweep's time limit, so not listed: {', '.join(stopped)}." if stopped else "")
        + "\n\nThe chosen recipe is then timed on the CPU: see the time-to-accuracy section."
    )
    machine = json.loads((out / "machine.json").read_text())
    command = f"python benchmarks/sweep_recipes.py --data CIFAR10/train --out {out} --parallel N"
    write_section("recipe_sweep", "Recipe sweep for the 45-minute CIFAR-10 goal (GPU)", command, body,
                  machine=machine["machine"], date=machine["date"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIFAR-10 train folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--parallel", type=int, default=6, help="candidates training at once")
    parser.add_argument("--time-limit", type=float, default=360.0, help="seconds; unfinished candidates are stopped")
    parser.add_argument("--only", help="comma-separated candidate names")
    parser.add_argument("--val-split", type=int, default=500, help="validation: the last K images of each class")
    parser.add_argument("--max-epochs", type=int, help="cap every candidate's epochs (smoke tests)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: one candidate as JSON
    parser.add_argument("--report", action="store_true",
                        help="summarise --out without training, into BENCHMARKS.md's recipe_sweep section")
    args = parser.parse_args()
    if args.one:
        run_candidate(json.loads(args.one), args.data, args.out, args.device, args.val_split)
    elif args.report:
        report(args.out, write=True)
    else:
        sweep(args.data, args.out, args.parallel, args.time_limit, args.device,
              args.only.split(",") if args.only else None, args.val_split, args.max_epochs)


if __name__ == "__main__":
    main()
