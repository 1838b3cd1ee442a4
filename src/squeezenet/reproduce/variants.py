"""Train one SqueezeNet-CIFAR variant by its metaparameters (Section 5) and bypass (Section 6), cached.

The sweeps of the design-space exploration and of the bypass table all train this way, with the
schedule's sweep settings (a fixed subset of the training images, a few epochs), and are scored on
the full validation split. Size is the float32 size of the BatchNorm-folded model, the uncompressed
model size of the paper's Figure 2.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from squeezenet.models import count_parameters, fold_batch_norm, squeezenet_cifar
from squeezenet.reproduce.runs import MissingRun, RunCache
from squeezenet.reproduce.training import SQUEEZENET_RECIPE, Solver, Splits, accuracy, data_settings, fit
from squeezenet.train import training_model_from_spec

__all__ = ["train_variant", "train_variant_seeds"]


def train_variant(cache: RunCache, splits: Splits, schedule, *, squeeze_ratio: float = 0.125, pct3x3: float = 0.5,
                  bypass: str = "none", seed: int = 0, show_progress: bool = False) -> dict:
    """Train (or read back) the variant with one seed (initialisation and batch order); returns its
    metaparameters, size, seed and validation accuracy. The seed is part of the run's settings, so
    the seed-0 runs made before sweeps had several seeds keep their cache key."""
    spec = squeezenet_cifar(squeeze_ratio=squeeze_ratio, pct3x3=pct3x3, bypass=bypass, batch_norm=True).spec.to_dict()
    settings = {"step": "variant", "spec": spec, **data_settings(splits), "epochs": schedule.sweep_epochs,
                "batch_size": schedule.sweep_batch_size, "lr": schedule.sweep_lr, "seed": seed,
                "recipe": SQUEEZENET_RECIPE}
    if bypass == "complex":  # runs from before the bypass convolutions had their own BatchNorm are stale
        settings["bypass_batch_norm"] = True

    def compute(folder: Path) -> dict:
        torch.manual_seed(seed)
        model = training_model_from_spec(spec)
        solver = Solver(schedule.sweep_epochs, schedule.sweep_lr, schedule.sweep_batch_size, seed=seed)
        training = fit(model, splits.sweep, solver, folder=folder, show_progress=show_progress,
                       resumable=schedule.resumable)
        folded = fold_batch_norm(model.to(memory_format=torch.contiguous_format))
        parameters = count_parameters(folded)
        return {"parameters": parameters, "fp32_bytes": 4 * parameters, "seconds": training["seconds"],
                "images_per_second": training["images_per_second"], **accuracy(folded, splits.val)}

    run = cache.run("variant", settings, compute)
    return {"squeeze_ratio": squeeze_ratio, "pct3x3": pct3x3, "bypass": bypass, "seed": seed, **run.result}


def train_variant_seeds(cache: RunCache, splits: Splits, schedule, *, squeeze_ratio: float = 0.125,
                        pct3x3: float = 0.5, bypass: str = "none", show_progress: bool = False) -> dict:
    """Train (or read back) the variant with seeds 0 .. ``schedule.sweep_seeds - 1`` and summarise them.

    ``top1`` / ``top5`` are the means over the seeds; ``top1_std`` is the sample standard deviation
    (n - 1 in the denominator; None for one seed), ``top1_per_seed`` lists each seed's top-1 in seed
    order. With a cache that must not compute, the finished seeds are summarised and the others
    listed in ``missing_seeds``; MissingRun is raised only when none is finished.
    """
    runs, missing = [], []
    for seed in range(schedule.sweep_seeds):
        try:
            runs.append(train_variant(cache, splits, schedule, squeeze_ratio=squeeze_ratio, pct3x3=pct3x3,
                                      bypass=bypass, seed=seed, show_progress=show_progress))
        except MissingRun:
            missing.append(seed)
    if not runs:
        raise MissingRun(f"SR {squeeze_ratio} / pct3x3 {pct3x3} / bypass {bypass}")
    top1 = [run["top1"] for run in runs]
    top5 = [run["top5"] for run in runs]
    first = runs[0]
    return {"squeeze_ratio": squeeze_ratio, "pct3x3": pct3x3, "bypass": bypass,
            "parameters": first["parameters"], "fp32_bytes": first["fp32_bytes"], "val_images": first["val_images"],
            "seeds": [run["seed"] for run in runs], "top1_per_seed": top1,
            "top1": statistics.fmean(top1), "top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
            "top1_min": min(top1), "top1_max": max(top1), "top5": statistics.fmean(top5),
            "seconds": sum(run["seconds"] for run in runs), "missing_seeds": missing}
