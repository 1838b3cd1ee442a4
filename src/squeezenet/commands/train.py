"""squeezenet train: train a model on an ImageFolder (one process, or DDP under torchrun)."""

from __future__ import annotations

import os
import sys

from squeezenet.models import ARCHITECTURES

__all__ = ["add_parser", "run", "summarize"]


def add_parser(subparsers):
    from squeezenet.train import PRESETS

    parser = subparsers.add_parser(
        "train", help="train a model on an ImageFolder (DDP under torchrun)", description=__doc__,
        epilog="Multi-process: torchrun --nproc-per-node N -m squeezenet train ... (the batch size is global).")
    parser.add_argument("--arch", required=True, help=f"architecture: {', '.join(ARCHITECTURES)}")
    parser.add_argument("--data", required=True, help="training images, DIR/<class>/<image>")
    validation = parser.add_mutually_exclusive_group()
    validation.add_argument("--val-data", help="validation images, DIR/<class>/<image>")
    validation.add_argument("--val-split", type=int, default=0, metavar="K",
                            help="hold out the last K images of every class (sorted by name) for validation")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="fast",
                        help="optimizer recipe: paper (SGD 0.04 poly, batch 512) or fast (one-cycle); default fast")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, help="global batch size (default: the preset's, 512)")
    parser.add_argument("--lr", type=float, help="base / peak learning rate for the global batch (default: the preset's)")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--dropout", type=float, help="override the architecture's dropout")
    parser.add_argument("--eval-flip", action="store_true",
                        help="validation scores each image and its mirror image together (test-time augmentation)")
    parser.add_argument("--eval-shift", type=int, default=0, metavar="PIXELS",
                        help="validation also scores copies shifted this many pixels up-left and down-right "
                             "(weights 1/4 each, the image 1/2; test-time augmentation, 3x the compute)")
    parser.add_argument("--eval-every", type=int, default=1, metavar="K",
                        help="validate after every K-th epoch and after the last (default 1)")
    parser.add_argument("--low-res-side", type=int, metavar="PIXELS",
                        help="train the first --low-res-fraction of the epochs on random crops of this side "
                             "(cheaper steps, same object scale), the rest at the full input size")
    parser.add_argument("--low-res-fraction", type=float, metavar="F",
                        help="share of the epochs in the low-resolution phase, in [0, 1) (default 0.5 with --low-res-side)")
    parser.add_argument("--clip-grad-norm", type=float, help="clip the global gradient norm to this value")
    parser.add_argument("--classifier-lr-scale", type=float, help="learning-rate factor of the last weight layer")
    parser.add_argument("--augment", choices=("auto", "cifar", "imagenet"), default="auto",
                        help="augmentation: cifar (pad-4 crop + flip), imagenet (RandomResizedCrop + flip); "
                             "auto picks by input size")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="bf16 autocast where the hardware is fast at it (auto), or fp32")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory layout")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes for large data sets")
    parser.add_argument("--cache-dir", help="decoded-image cache folder (default ~/.cache/squeezenet/decoded-images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="run folder: last.pth, final.pth, metrics.jsonl")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pth")
    parser.add_argument("--on-bad-image", choices=("skip", "fail"), default="skip",
                        help="unreadable images: skip and count them (default), or stop with an error")
    return parser


def run(args) -> dict:
    from squeezenet.train import config_for_preset, train

    config = config_for_preset(
        args.preset, arch=args.arch, data=args.data, val_data=args.val_data, val_split=args.val_split,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing, dropout=args.dropout, clip_grad_norm=args.clip_grad_norm,
        classifier_lr_scale=args.classifier_lr_scale, augment=args.augment, eval_flip=args.eval_flip,
        eval_shift=args.eval_shift,
        eval_every=args.eval_every, low_res_side=args.low_res_side,
        low_res_fraction=args.low_res_fraction,
        precision=args.precision, device=args.device, channels_last=not args.no_channels_last,
        threads=args.threads, workers=args.workers, cache_dir=args.cache_dir, seed=args.seed, out=args.out,
        resume=args.resume, show_progress=not args.json, on_bad_image=args.on_bad_image)
    result = train(config)
    if int(os.environ.get("RANK", "0")) != 0:
        # Under torchrun only rank 0 reports; the others would print the same object again.
        sys.stdout = open(os.devnull, "w")
    result.pop("history", None)
    return result


def summarize(result: dict) -> None:
    print(f"{result['epochs']} epochs in {result['seconds'] / 60:.1f} min, {result['images_per_second']:.0f} images/s "
          f"({result['precision']}, {result['world_size']} process(es), {result['device']})")
    if result.get("top1") is None:
        # Validation is optional; say how to get it rather than print a bare "n/a".
        print(f"no validation set (pass --val-split K or --val-data DIR)   final loss {result['loss']:.4f}")
    else:
        print(f"validation top-1 {100 * result['top1']:.2f}%   top-5 {100 * result['top5']:.2f}%   "
              f"final loss {result['loss']:.4f}")
    if result.get("skipped_images"):
        print(f"skipped {result['skipped_images']} unreadable image(s), e.g. {result['skipped'][0]}")
    if result.get("checkpoint"):
        print(f"checkpoint: {result['checkpoint']}")
