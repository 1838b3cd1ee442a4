"""A training run's settings: the optimizer recipes and ``TrainConfig``, whose fields are also the
flags of ``squeezenet train`` (``commands/train.py`` generates them from the metadata of ``option``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from squeezenet.models import ARCHITECTURES
from squeezenet.training_data import AUGMENTATIONS, DEFAULT_CACHE_LIMIT_BYTES

__all__ = ["TRAINING_RECIPES", "TrainConfig", "config_for_preset", "option"]

# The one table of optimizer settings: a TrainConfig field left at None takes its preset's value.
TRAINING_RECIPES: dict[str, dict] = {
    # Iandola et al. 2016, solver.prototxt of the SqueezeNet release.
    "paper": dict(lr=0.04, schedule="poly", warmup_fraction=0.0, momentum=0.9, nesterov=False,
                  weight_decay=2e-4, decay_norm_and_bias=True, label_smoothing=0.0, batch_size=512,
                  classifier_lr_scale=1.0),
    # The classifier's learning rate is 10x lower: SqueezeNet's class scores pass a ReLU, and at
    # the body's rate single steps pushed whole classes below zero for good (4-epoch runs on 15k
    # CIFAR-10 images: 2-5 of 10 classes never predicted at 1x, none at 0.1x; see build_training_model).
    # Peak 0.4 beat 0.2 there (54.5% vs 48.2% top-1 after 4 epochs).
    "fast": dict(lr=0.4, schedule="one_cycle", warmup_fraction=0.2, momentum=0.9, nesterov=True,
                 weight_decay=5e-4, decay_norm_and_bias=False, label_smoothing=0.1, batch_size=512,
                 classifier_lr_scale=0.1),
}


def option(default, help: str, **command_line):
    """A config field whose ``help`` (and argparse ``choices``, ``metavar``, ``flag``, ``required``,
    ``group`` of mutually exclusive flags, ``cli=False``) `squeezenet train` turns into its flag."""
    return field(default=default, metadata={"help": help, **command_line})


@dataclass
class TrainConfig:
    # I/O
    arch: str = option("squeezenet_cifar_bn", f"architecture: {', '.join(ARCHITECTURES)}", required=True)
    data: str = option("", "training images, DIR/<class>/<image>", required=True)
    val_data: str | None = option(None, "validation images, DIR/<class>/<image>", group="validation")
    val_split: int = option(0, "hold out the last K images of every class (sorted by name) for validation",
                            metavar="K", group="validation")
    out: str | None = option(None, "run folder: last.pth, final.pth, metrics.jsonl", required=True)  # None: no files
    resume: bool = option(False, "continue the run in --out from last.pth")
    # data
    augment: str = option("auto", "augmentation: cifar (pad-4 crop + flip), imagenet (RandomResizedCrop + flip); "
                          "auto picks cifar for inputs of 64 pixels or less", choices=("auto", *AUGMENTATIONS))
    cache_dir: str | None = option(None, "decoded-image cache folder (default ~/.cache/squeezenet/decoded-images)")
    cache_limit_bytes: int = option(DEFAULT_CACHE_LIMIT_BYTES, "larger sets stream through DataLoader workers")
    workers: int = option(2, "decoding processes for large data sets")
    on_bad_image: str = option("skip", "unreadable images: skip and count them, or stop with an error",
                               choices=("skip", "fail"))
    # model
    dropout: float | None = option(None, "override the architecture's dropout")
    # optimizer: None takes the preset's value (see TRAINING_RECIPES)
    preset: str = option("fast", "optimizer recipe: paper (SGD 0.04 poly, batch 512) or fast (one-cycle)",
                         choices=tuple(TRAINING_RECIPES))
    epochs: int = option(30, "passes over the training set")
    batch_size: int | None = option(None, "global batch size, split across DDP processes (default: the preset's)")
    lr: float | None = option(None, "peak (one-cycle) or base (poly) learning rate for the global batch (default: the preset's)")
    schedule: str | None = option(None, "learning-rate schedule: poly (power 1, the paper) or one_cycle",
                                  choices=("poly", "one_cycle"))
    warmup_fraction: float | None = option(None, "one-cycle: share of the steps rising to the peak")
    momentum: float | None = option(None, "SGD momentum")
    nesterov: bool | None = option(None, "Nesterov momentum")
    weight_decay: float | None = option(None, "L2 weight decay")
    decay_norm_and_bias: bool | None = option(None, "apply weight decay to BN scales/shifts and biases too")
    label_smoothing: float | None = option(None, "label smoothing of the cross-entropy loss")
    clip_grad_norm: float | None = option(None, "clip the global gradient norm to this value")
    classifier_lr_scale: float | None = option(None, "learning-rate factor of the last weight layer")
    # A cheaper first phase: the first `low_res_fraction` of the epochs train on random crops of
    # `low_res_side` pixels (same object scale, fewer pixels), the rest at the full input size.
    low_res_side: int | None = option(None, "train the first --low-res-fraction of the epochs on random crops of "
                                      "this side, the rest at the full input size", metavar="PIXELS")
    low_res_fraction: float = option(0.5, "share of the epochs in the low-resolution phase, in [0, 1)", metavar="F")
    # system
    device: str = option("auto", "auto (CUDA if present), cpu or cuda", choices=("auto", "cpu", "cuda"))
    precision: str = option("auto", "bf16 autocast where the hardware is fast at it (auto), or fp32",
                            choices=("auto", "bf16", "fp32"))
    channels_last: bool = option(True, "keep NCHW memory layout", flag="--no-channels-last")
    threads: int | None = option(None, "torch CPU threads per process (default: see train_runtime.set_threads)")
    seed: int = option(0, "seed of the initial weights, the data order and the augmentation")
    # validation
    eval_batch_size: int = option(500, "validation batch size")
    eval_flip: bool = option(False, "validation scores each image and its mirror image together "
                             "(test-time augmentation)")
    eval_shift: int = option(0, "validation also scores copies shifted this many pixels up-left and down-right "
                             "(weights 1/4 each, the image 1/2; test-time augmentation, 3x the compute)",
                             metavar="PIXELS")
    eval_every: int = option(1, "validate after every K-th epoch and after the last", metavar="K")
    show_progress: bool = option(True, "progress bars on stderr", cli=False)  # the command: off with --json

    def __post_init__(self) -> None:
        if self.preset not in TRAINING_RECIPES:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(TRAINING_RECIPES)}")
        for name, value in TRAINING_RECIPES[self.preset].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be positive, got {self.lr}"),
            (self.schedule in ("poly", "one_cycle"), f"unknown schedule {self.schedule!r}; choose poly or one_cycle"),
            (0 <= self.warmup_fraction < 1, f"warmup fraction must be in [0, 1), got {self.warmup_fraction}"),
            (self.augment in ("auto", *AUGMENTATIONS),
             f"unknown augmentation {self.augment!r}; choose auto, {', '.join(AUGMENTATIONS)}"),
            (self.precision in ("auto", "bf16", "fp32"), f"unknown precision {self.precision!r}; choose auto, bf16 or fp32"),
            (self.device in ("auto", "cpu", "cuda"), f"unknown device {self.device!r}; choose auto, cpu or cuda"),
            (self.on_bad_image in ("skip", "fail"), f"unknown on-bad-image {self.on_bad_image!r}; choose skip or fail"),
            (not (self.val_split and self.val_data), "give either a validation folder or a validation split, not both"),
            (self.dropout is None or 0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.classifier_lr_scale > 0,
             f"classifier learning-rate scale must be positive, got {self.classifier_lr_scale}"),
            (self.clip_grad_norm is None or self.clip_grad_norm > 0,
             f"gradient clipping norm must be positive, got {self.clip_grad_norm}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.eval_every >= 1, f"eval-every must be at least 1, got {self.eval_every}"),
            (self.eval_shift >= 0, f"eval-shift must be at least 0 pixels, got {self.eval_shift}"),
            (0 <= self.low_res_fraction < 1, f"low-resolution fraction must be in [0, 1), got {self.low_res_fraction}"),
            (self.low_res_side is None or self.low_res_side >= 8,
             f"low-resolution side must be at least 8 pixels, got {self.low_res_side}"),
            (self.threads is None or self.threads >= 1, f"threads must be at least 1, got {self.threads}"),
            (self.workers >= 0, f"workers must be at least 0, got {self.workers}"),
            (self.weight_decay >= 0, f"weight decay must be at least 0, got {self.weight_decay}"),
        ]
        for holds, message in checks:  # `not holds`, not `holds is False`: NaN fails every comparison
            if not holds:
                raise ValueError(message)


def config_for_preset(preset: str, **overrides) -> TrainConfig:
    """A TrainConfig with the preset's optimizer settings, then ``overrides`` (None values ignored)."""
    if preset not in TRAINING_RECIPES:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(TRAINING_RECIPES)}")
    unknown = set(overrides) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    return TrainConfig(**{**{k: v for k, v in overrides.items() if v is not None}, "preset": preset})
