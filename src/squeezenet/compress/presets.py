"""Named compression recipes: the settings behind ``squeezenet compress --preset NAME``.

Each is a ``pipeline.CompressionRecipe`` run by ``pipeline.compress_model`` like any other, with a
name, a description and the preprocessing its calibration photos need.

``imagenet-small`` compresses the published Deep Compression SqueezeNet with no labels:
per-layer bit widths allocated by sensitivity on calibration images (``allocation``),
linear-initialised k-means codebooks (Han et al. 2016), then the shared centroids distilled
from the uncompressed model (``distill``). Its numbers, and the command that measured them,
are in BENCHMARKS.md (section ``imagenet_compression``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from squeezenet.compress.allocation import BitAllocation
from squeezenet.compress.calibration import calibration_split
from squeezenet.compress.distill import DistillConfig
from squeezenet.compress.pipeline import CompressionRecipe

__all__ = ["NamedRecipe", "COMPRESSION_RECIPES", "calibration_split"]


@dataclass(frozen=True)
class NamedRecipe:
    name: str
    description: str
    recipe: CompressionRecipe
    calibration_preprocess: str = "caffe"  # how the calibration photos become model inputs


COMPRESSION_RECIPES: dict[str, NamedRecipe] = {
    "imagenet-small": NamedRecipe(
        name="imagenet-small",
        description="published ImageNet SqueezeNet under 400 KB: sensitivity bit allocation + centroid distillation",
        recipe=CompressionRecipe(
            coder="ans",
            # The rule is the goal itself: the least summed single-layer KL the greedy allocation finds
            # with the layers at most 390,000 bytes (10 KB under the 400,000 for headers and for
            # the code statistics moving during distillation). No evaluation photo is involved.
            allocation=BitAllocation(candidate_bits=(8, 7, 6, 5, 4), distortion_budget=math.inf, max_bytes=390_000,
                                     sensitivity_every=10),
            distillation=DistillConfig(epochs=4, batch_size=25, learning_rate=0.002, temperature=1.0, train_bias=True),
            float16=True,
        ),
    ),
}
