"""Centroid distillation: trained quantization without labels (the bit widths come from ``allocation``).

There is no labelled training set for the published ImageNet model, so the shared centroids are
fine-tuned against the uncompressed model (the teacher) on a few hundred unlabelled calibration
images, as calibration methods such as AdaRound (Nagel et al. 2020) do: the weights are tied to
their codebooks (``quantize.tie_weights``) and only the shared centroids (optionally the biases but
the classifier's) are trained to minimise KL(teacher || student) on softened outputs, on random
227-pixel crops and mirrors of the calibration images (the augmentation the published model was
trained with). Han et al. 2016 fine-tune centroids on the labelled training set with the task
loss; the teacher's outputs replace the labels here.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from squeezenet.compress.quantize import LayerQuantization, tie_weights, untie_weights
from squeezenet.compress.sparse import SparseLayer
from squeezenet.models import weight_layers
from squeezenet.progress import progress

__all__ = [
    "DistillConfig",
    "distill",
    "entropy_bytes",
    "kl_divergence",
    "random_crops",
    "teacher_logits",
]


def kl_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Mean over images of KL(softmax(teacher / T) || softmax(student / T)), times T**2 (Hinton et al. 2015)."""
    log_student = torch.log_softmax(student / temperature, dim=1)
    log_teacher = torch.log_softmax(teacher / temperature, dim=1)
    per_image = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1)
    return per_image.mean() * temperature**2


@torch.no_grad()
def teacher_logits(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 50) -> torch.Tensor:
    """The model's outputs on preprocessed inputs, batch by batch (cache them: they do not change)."""
    model.eval()
    return torch.cat([model(inputs[start : start + batch_size]) for start in range(0, len(inputs), batch_size)])


def entropy_bytes(layer: SparseLayer, *, codebook_bytes: int = 4, bias_bytes: int = 4) -> int:
    """Bytes of a layer if its codes and gaps were entropy coded at their empirical entropy.

    An estimate for comparing allocations (an ideal static coder reaches it up to its table); the
    real size comes from the file writer.
    """
    total_bits = 0.0
    for symbols in (layer.codes, layer.gaps):
        if len(symbols):
            counts = np.bincount(np.asarray(symbols, dtype=np.int64))
            counts = counts[counts > 0]
            probabilities = counts / counts.sum()
            total_bits += float(-(counts * np.log2(probabilities)).sum())
    return math.ceil(total_bits / 8) + codebook_bytes * len(layer.codebook) + bias_bytes * len(layer.bias)


def random_crops(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``size`` crop of each uint8 image [N, C, H, W], mirrored with probability 1/2."""
    count, _, height, width = images.shape
    if height < size or width < size:
        raise ValueError(f"images of {height}x{width} are smaller than the {size} crop")
    tops = torch.randint(0, height - size + 1, (count,), generator=generator)
    lefts = torch.randint(0, width - size + 1, (count,), generator=generator)
    mirror = torch.rand(count, generator=generator) < 0.5
    crops = []
    for image, top, left, flip in zip(images, tops.tolist(), lefts.tolist(), mirror.tolist()):
        crop = image[:, top : top + size, left : left + size]
        crops.append(crop.flip(-1) if flip else crop)
    return torch.stack(crops)


@dataclass
class DistillConfig:
    """Centroid fine-tuning against the teacher (defaults: the ``imagenet-small`` preset's)."""

    epochs: int = 4
    batch_size: int = 25
    # Adam, per layer relative to the RMS of its non-zero weights: Adam moves every parameter by about
    # its learning rate per step, and layers' weight scales differ by more than 10x.
    learning_rate: float = 0.002
    temperature: float = 1.0
    train_bias: bool = True  # also train the biases of every layer but the last
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.learning_rate <= 0 or self.temperature <= 0:
            raise ValueError(f"invalid distillation settings: {self}")


def distill(
    teacher: nn.Module,
    quantizations: dict[str, LayerQuantization],
    images: torch.Tensor,
    to_input: Callable[[torch.Tensor], torch.Tensor],
    config: DistillConfig,
    *,
    crop_size: int,
    show_progress: bool = False,
) -> tuple[nn.Module, dict[str, LayerQuantization], list[float]]:
    """Fine-tune the shared centroids (and with ``train_bias`` the biases of all but the last layer)
    so the quantized model's outputs match the teacher's.

    ``images`` are uint8 calibration images [N, 3, H, W] at least ``crop_size`` on a side (for the
    published model: warped to 256x256); ``to_input`` turns a uint8 crop batch into the model's input
    (e.g. BGR minus the mean). Returns the student (plain weights), its trained quantizations and the
    mean loss of each epoch. The teacher is not changed.
    """
    if len(images) == 0:
        raise ValueError("no calibration images to distill on")
    teacher.eval()
    student = copy.deepcopy(teacher)
    tie_weights(student, quantizations)
    groups = []
    layers = weight_layers(student)
    for index, (_, module) in enumerate(layers):
        if not hasattr(module, "parametrizations"):
            continue
        shared = module.parametrizations.weight[0]
        weight_scale = _rms(shared.codebook[shared.codes])
        groups.append({"params": [shared.codebook], "lr": config.learning_rate * weight_scale})
        # Biases correct the mean shift quantization adds to each channel (as in Nagel et al. 2019's
        # bias correction); the last layer's class biases are left alone: they would fit the photos.
        if config.train_bias and module.bias is not None and index < len(layers) - 1:
            bias_scale = _rms(module.bias) if torch.count_nonzero(module.bias) else weight_scale
            groups.append({"params": [module.bias], "lr": config.learning_rate * bias_scale})
    trainable = {id(p) for group in groups for p in group["params"]}
    for parameter in student.parameters():
        parameter.requires_grad_(id(parameter) in trainable)
    optimizer = torch.optim.Adam(groups)
    steps_per_epoch = math.ceil(len(images) / config.batch_size)
    total_steps = max(config.epochs * steps_per_epoch, 1)
    # Cosine decay: large early moves to undo the k-means bias, small late ones to settle.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps)))
    generator = torch.Generator().manual_seed(config.seed)
    student.eval()  # no dropout: the student must match the teacher's deterministic outputs
    history = []
    for _ in progress(range(config.epochs), total=config.epochs, desc="distill", enabled=show_progress):
        order = torch.randperm(len(images), generator=generator)
        losses = []
        for start in range(0, len(images), config.batch_size):
            batch = to_input(random_crops(images[order[start : start + config.batch_size]], crop_size, generator))
            with torch.no_grad():
                target = teacher(batch)
            loss = kl_divergence(student(batch), target, config.temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        history.append(sum(losses) / len(losses))
    trained = untie_weights(student)
    for parameter in student.parameters():
        parameter.requires_grad_(True)
    return student.eval(), trained, history


def _rms(values: torch.Tensor) -> float:
    """Root mean square of the non-zero values (1.0 when there are none)."""
    nonzero = values.detach()[values.detach() != 0]
    return float(nonzero.pow(2).mean().sqrt()) if nonzero.numel() else 1.0
