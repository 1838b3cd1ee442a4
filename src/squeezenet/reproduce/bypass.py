"""Section 6 / Table 3 of the paper: SqueezeNet with no bypass, simple bypass and complex bypass.

Simple bypass adds identity shortcuts around fire3, fire5, fire7 and fire9 (where the channel
counts match); complex bypass also adds 1x1-convolution shortcuts around the other Fire modules.
The paper found simple bypass the most accurate (60.4% top-1 vs 57.5% vanilla, 58.8% complex).
With BatchNorm, each 1x1 bypass convolution gets one too (see ``squeezenet.models.Fire``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from squeezenet.reproduce.report import SEED_COLUMNS, SEED_NOTE, markdown_table, seed_cells, write_plot
from squeezenet.reproduce.runs import RunCache
from squeezenet.reproduce.sweeps import SweepPoint, train_sweep, unfinished_note, write_sweep_table
from squeezenet.reproduce.training import Splits

__all__ = ["BYPASS_ROWS", "REPORT_FILES", "bypass_report"]

# (bypass kind, the paper's ImageNet top-1 / top-5 for it)
BYPASS_ROWS = (("none", "57.5% / 80.3%"), ("simple", "60.4% / 82.5%"), ("complex", "58.8% / 82.0%"))
REPORT_FILES = ("bypass.md", "bypass.csv", "bypass.png")
COLUMNS = ["bypass", "parameters", "fp32_bytes", *SEED_COLUMNS, "val_images", "seconds", "paper_imagenet"]


def bypass_report(splits: Splits, schedule, cache: RunCache, *, out: Path, stamp, show_progress: bool = False,
                  log: Callable[[str], None] = lambda text: None) -> dict:
    points = [SweepPoint(kind, f"bypass {kind}", {"bypass": kind}, {"paper_imagenet": paper})
              for kind, paper in BYPASS_ROWS]
    rows, missing = train_sweep(points, splits, schedule, cache, show_progress=show_progress, log=log)
    names = {"none": "Vanilla SqueezeNet", "simple": "SqueezeNet + simple bypass",
             "complex": "SqueezeNet + complex bypass"}
    table = markdown_table(
        ["Architecture", "Parameters", "Model size (fp32)", "Seeds", "Top-1 per seed", "Top-1 (mean ± std)",
         "Top-5 (mean)", "Paper (ImageNet top-1 / top-5)"],
        [[names[row["bypass"]], f"{row['parameters']:,}", f"{row['fp32_bytes'] / 1e6:.2f} MB", *seed_cells(row),
          f"{100 * row['top5']:.1f}%", row["paper_imagenet"]] for row in rows])
    training = (f"each trained {schedule.sweep_epochs} epoch(s) with {schedule.sweep_seeds} seed(s) on {len(splits.sweep)} training images "
                f"(schedule '{schedule.name}'), scored on {len(splits.val)} validation images")
    notes = (f"SqueezeNet-CIFAR v1.0 metaparameters (SR=0.125, pct3x3=0.5) with BatchNorm (complex bypass: after "
             f"each 1x1 bypass convolution too); {training}. "
             "Shortened training: compare the ordering, not the absolute accuracy, with the paper's ImageNet numbers. "
             + SEED_NOTE)
    chance = [names[row["bypass"]] for row in rows if min(row["top1_per_seed"]) <= 1.0 / 10 + 0.005]
    if chance:
        notes += (f" {', '.join(chance)}: at chance (10% top-1) for at least one seed, its training collapsed under this schedule "
                  f"(peak lr {schedule.sweep_lr}); the number says nothing about the architecture.")
    notes += unfinished_note(missing)
    files = write_sweep_table(out, "bypass", rows, COLUMNS, stamp=stamp, paragraphs=[table, notes],
                              title="Bypass connections (Section 6, Table 3), reproduced on CIFAR-10")
    points = {names[row["bypass"]]: [(row["fp32_bytes"] / 1e6, 100 * row["top1"], row["bypass"],
                                      None if row["top1_std"] is None else 100 * row["top1_std"])] for row in rows}
    write_plot(out / "bypass.png", points, title="SqueezeNet bypass variants", xlabel="model size, fp32 (MB)",
               ylabel="validation top-1 (%)", stamp=stamp, subtitle=f"CIFAR-10, {training}", logx=False)
    return {"rows": rows, "missing": missing, **files, "plot": str(out / "bypass.png")}
