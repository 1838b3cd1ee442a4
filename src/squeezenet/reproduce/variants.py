"""Train one SqueezeNet-CIFAR variant by its metaparameters (Section 5) and bypass (Section 6), cached.

The sweeps of the design-space exploration and of the bypass table all train this way, with the
schedule's sweep settings (a fixed subset of the training images, a few epochs), and are scored on
the full validation split. Size is the float32 size of the BatchNorm-folded model, the uncompressed
model size of the paper's Figure 2.
"""

from __future__ import annotations

from pathlib import Path

import torch

from squeezenet.models import count_parameters, fold_batch_norm, squeezenet_cifar
from squeezenet.reproduce.runs import RunCache
from squeezenet.reproduce.training import SQUEEZENET_RECIPE, Splits, accuracy, data_settings, fit
from squeezenet.train import training_model_from_spec

__all__ = ["train_variant"]


def train_variant(cache: RunCache, splits: Splits, schedule, *, squeeze_ratio: float = 0.125, pct3x3: float = 0.5,
                  bypass: str = "none", show_progress: bool = False) -> dict:
    """Train (or read back) the variant; returns its metaparameters, size and validation accuracy."""
    spec = squeezenet_cifar(squeeze_ratio=squeeze_ratio, pct3x3=pct3x3, bypass=bypass, batch_norm=True).spec.to_dict()
    settings = {"step": "variant", "spec": spec, **data_settings(splits), "epochs": schedule.sweep_epochs,
                "batch_size": schedule.sweep_batch_size, "lr": schedule.sweep_lr, "seed": 0,
                "recipe": SQUEEZENET_RECIPE}
    if bypass == "complex":  # runs from before the bypass convolutions had their own BatchNorm are stale
        settings["bypass_batch_norm"] = True

    def compute(folder: Path) -> dict:
        torch.manual_seed(0)
        model = training_model_from_spec(spec)
        training = fit(model, splits.sweep, epochs=schedule.sweep_epochs, lr=schedule.sweep_lr,
                       batch_size=schedule.sweep_batch_size, folder=folder, show_progress=show_progress,
                       resumable=schedule.resumable)
        folded = fold_batch_norm(model.to(memory_format=torch.contiguous_format))
        parameters = count_parameters(folded)
        return {"parameters": parameters, "fp32_bytes": 4 * parameters, "seconds": training["seconds"],
                "images_per_second": training["images_per_second"], **accuracy(folded, splits.val)}

    run = cache.run("variant", settings, compute)
    return {"squeeze_ratio": squeeze_ratio, "pct3x3": pct3x3, "bypass": bypass, **run.result}
