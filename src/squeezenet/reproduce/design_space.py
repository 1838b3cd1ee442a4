"""Section 5 / Figure 2 of the paper: the SqueezeNet design space on CIFAR-10.

(a) the squeeze ratio SR (squeeze filters / expand filters) in {0.125, 0.25, 0.5, 0.75, 1.0} with
pct3x3 = 0.5; (b) the share of 3x3 filters in the expand layers, pct3x3 in {0.01, 0.125, 0.25,
0.5, 0.75, 0.99}, with SR = 0.5 as in the paper's Section 5.3. All other metaparameters are
v1.0's (base_e = 128, incr_e = 128, freq = 2). Accuracy against model size, as the paper plots it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from squeezenet.reproduce.report import SEED_COLUMNS, SEED_NOTE, markdown_table, seed_cells, write_plot
from squeezenet.reproduce.runs import RunCache
from squeezenet.reproduce.sweeps import SweepPoint, train_sweep, unfinished_note, write_sweep_table
from squeezenet.reproduce.training import Splits

__all__ = ["REPORT_FILES", "SQUEEZE_RATIOS", "PCT3X3_VALUES", "PCT3X3_SWEEP_SQUEEZE_RATIO", "design_space_report"]

SQUEEZE_RATIOS = (0.125, 0.25, 0.5, 0.75, 1.0)
PCT3X3_VALUES = (0.01, 0.125, 0.25, 0.5, 0.75, 0.99)
PCT3X3_SWEEP_SQUEEZE_RATIO = 0.5
REPORT_FILES = ("design_space.md", "design_space.csv", "design_space_sr.png", "design_space_pct3x3.png")
COLUMNS = ["sweep", "squeeze_ratio", "pct3x3", "parameters", "fp32_bytes", *SEED_COLUMNS, "val_images", "seconds"]


def design_space_report(splits: Splits, schedule, cache: RunCache, *, out: Path, stamp, show_progress: bool = False,
                        log: Callable[[str], None] = lambda text: None) -> dict:
    settings = [("squeeze ratio", ratio, 0.5) for ratio in SQUEEZE_RATIOS]
    settings += [("pct3x3", PCT3X3_SWEEP_SQUEEZE_RATIO, share) for share in PCT3X3_VALUES]
    points = [SweepPoint(f"SR {ratio} / pct3x3 {share}", f"{sweep}: SR {ratio}, pct3x3 {share}",
                         {"squeeze_ratio": ratio, "pct3x3": share}, {"sweep": sweep})
              for sweep, ratio, share in settings]
    rows, missing = train_sweep(points, splits, schedule, cache, show_progress=show_progress, log=log)
    training = (f"each variant trained {schedule.sweep_epochs} epoch(s) with {schedule.sweep_seeds} seed(s) on "
                f"{len(splits.sweep)} training images (schedule '{schedule.name}'), scored on {len(splits.val)} "
                f"validation images")
    table = markdown_table(
        ["Sweep", "SR", "pct3x3", "Parameters", "Model size (fp32)", "Seeds", "Top-1 per seed", "Top-1 (mean ± std)",
         "Top-5 (mean)"],
        [[row["sweep"], row["squeeze_ratio"], row["pct3x3"], f"{row['parameters']:,}",
          f"{row['fp32_bytes'] / 1e6:.2f} MB", *seed_cells(row), f"{100 * row['top5']:.1f}%"]
         for row in rows])
    notes = (f"SqueezeNet-CIFAR (32x32, BatchNorm, folded for the size) with v1.0's base_e=128, incr_e=128, freq=2; "
             f"(a) SR sweep at pct3x3=0.5, (b) pct3x3 sweep at SR={PCT3X3_SWEEP_SQUEEZE_RATIO} (the paper's "
             f"Section 5.3 setting). Shortened training: {training}. The paper trained each point on ImageNet to "
             "convergence; here only the trend is comparable, not the absolute accuracy. " + SEED_NOTE)
    notes += unfinished_note(missing)
    files = write_sweep_table(out, "design_space", rows, COLUMNS, stamp=stamp,
                              title="Design space (Section 5, Figure 2), reproduced on CIFAR-10",
                              paragraphs=[table, notes, "Plots: `design_space_sr.png`, `design_space_pct3x3.png`."])
    subtitle = f"CIFAR-10, {training}"
    plots = {}
    for sweep, key, filename, label in (("squeeze ratio", "squeeze_ratio", "design_space_sr.png", "SR"),
                                        ("pct3x3", "pct3x3", "design_space_pct3x3.png", "pct3x3")):
        points = [(row["fp32_bytes"] / 1e6, 100 * row["top1"], f"{label}={row[key]}",
                   None if row["top1_std"] is None else 100 * row["top1_std"]) for row in rows if row["sweep"] == sweep]
        fixed = "pct3x3=0.5" if key == "squeeze_ratio" else f"SR={PCT3X3_SWEEP_SQUEEZE_RATIO}"
        write_plot(out / filename, {f"{label} sweep ({fixed})": points},
                   title=f"SqueezeNet design space: {label} vs accuracy", xlabel="model size, fp32 (MB)",
                   ylabel="validation top-1 (%)", stamp=stamp, subtitle=subtitle)
        plots[key] = str(out / filename)
    return {"rows": rows, "missing": missing, **files, "plot": plots}
