"""squeezenet compress: Deep Compression of a model into a .sqz file (prune, quantize, entropy-code).

Examples:
    squeezenet compress --weights compressed_SqueezeNet.net --out model.sqz --bits 8 --json
    squeezenet compress --weights final.pth --out small.sqz --prune default=0.6,conv1=0.3 \\
        --bits conv1=8,default=6 --coder huffman --finetune-data cifar10/train --val-split 500 --epochs 2
    squeezenet compress --weights compressed_SqueezeNet.net --out small.sqz --preset imagenet-small \\
        --calibration-data imagenet-samples

Layer names are module names (``features.0``) or the paper's (``conv1``, ``fire2/expand3x3``,
``fire9`` for a whole Fire module, ``conv10``; AlexNet ``conv1``-``conv5``, ``fc6``-``fc8``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squeezenet.commands._common import add_model_arguments, load_model_from_args, refuse_output_over_input

__all__ = ["add_parser", "run", "summarize"]

def add_parser(subparsers):
    parser = subparsers.add_parser("compress", help="prune, quantize and entropy-code a model into a .sqz file",
                                   description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="the .sqz file to write")
    parser.add_argument("--prune", help="target sparsity per layer: 0.6 or conv1=0.3,default=0.6 (default: no pruning)")
    parser.add_argument("--prune-rule", choices=("sparsity", "sensitivity"), default="sparsity",
                        help="sensitivity: --prune values are Han et al.'s quality, threshold = quality x std(weights)")
    parser.add_argument("--prune-rounds", type=int,
                        help="with --finetune-data: prune-retrain rounds on a cubic ramp to the final sparsity "
                             "(default 1)")
    parser.add_argument("--bits", default=None, help="bits per layer: 8 or conv1=8,default=6 (default 8)")
    parser.add_argument("--coder", choices=("ans", "huffman", "fixed"), default=None,
                        help="entropy coder of codes and gaps (default ans)")
    parser.add_argument("--finetune-data", help="ImageFolder to retrain on after pruning and after quantization")
    # The retraining options default to None so that one given without --finetune-data can be refused;
    # their defaults are in _RETRAINING_DEFAULTS.
    parser.add_argument("--epochs", type=int, help="with --finetune-data: epochs of each retraining stage (default 1)")
    parser.add_argument("--lr", type=float,
                        help="with --finetune-data: peak learning rate of the retraining after pruning (default 0.01)")
    parser.add_argument("--centroid-lr", type=float,
                        help="peak learning rate of the centroid retraining (default: a tenth of --lr; the "
                             "BatchNorm-folded network diverged at the pruning stage's rate, measured on CIFAR-10)")
    parser.add_argument("--batch-size", type=int, help="with --finetune-data: retraining batch size (default 128)")
    parser.add_argument("--val-split", type=int,
                        help="with --finetune-data: hold out the last K images of every class for validation")
    parser.add_argument("--preset", help="a named recipe from squeezenet.compress.presets (e.g. imagenet-small)")
    parser.add_argument("--calibration-data", help="with --preset: a folder of unlabelled photos")
    parser.add_argument("--on-bad-image", choices=("skip", "fail"), default="skip",
                        help="unreadable images in --finetune-data/--calibration-data: skip and count them, or fail")
    return parser


# Retraining options: (argparse destination, option, default when not given).
_RETRAINING_OPTIONS = (("epochs", "--epochs", 1), ("prune_rounds", "--prune-rounds", 1), ("lr", "--lr", 0.01),
                       ("centroid_lr", "--centroid-lr", None), ("val_split", "--val-split", 0),
                       ("batch_size", "--batch-size", 128))


def run(args) -> dict:
    from squeezenet.compress.layer_settings import parse_layer_values
    from squeezenet.compress.pipeline import CompressionRecipe, compress_model

    if Path(args.out).suffix.lower() != ".sqz":
        raise ValueError(f"--out must end in .sqz, got {Path(args.out).name}")
    _check_retraining_options(args)
    refuse_output_over_input(args.out, args.weights)
    if args.preset is not None:
        _check_preset_arguments(args)
    model = load_model_from_args(args)
    if args.preset is not None:
        return _run_preset(args, model)
    if args.calibration_data is not None:
        raise ValueError("--calibration-data is used only with --preset")
    prune = parse_layer_values(args.prune, float) if args.prune else None
    retraining: list[dict] = []
    retrain = retrain_centroids = None
    if args.finetune_data:
        centroid_lr = args.centroid_lr if args.centroid_lr is not None else args.lr / 10
        retrain, retrain_centroids = _retrainers(args, model, retraining, (args.lr, centroid_lr))
    recipe = CompressionRecipe(
        bits=parse_layer_values(args.bits or "8", int),
        coder=args.coder or "ans",
        sparsity=prune if args.prune_rule == "sparsity" else None,
        quality=prune if args.prune_rule == "sensitivity" else None,
        prune_rounds=args.prune_rounds,
        retrain=retrain,
        retrain_centroids=retrain_centroids,
    )
    result = compress_model(model, recipe, args.out)
    summary = _summary(args.out, model, result)
    if retraining:
        summary["retraining"] = retraining
    return summary


def _check_retraining_options(args) -> None:
    """Refuse retraining options without --finetune-data (they would be ignored), check the given
    ones, and fill in the defaults of the others."""
    given = [option for name, option, _ in _RETRAINING_OPTIONS if getattr(args, name) is not None]
    if given and args.finetune_data is None:
        raise ValueError(f"{', '.join(given)} only apply with --finetune-data (retraining); "
                         f"add --finetune-data DIR or drop {'them' if len(given) > 1 else 'it'}")
    if args.prune_rounds is not None and args.prune is None:
        raise ValueError("--prune-rounds only applies with --prune (there is nothing to prune in rounds)")
    for name, option, default in _RETRAINING_OPTIONS:
        if getattr(args, name) is None:
            setattr(args, name, default)
    for name, option in (("epochs", "--epochs"), ("batch_size", "--batch-size"), ("prune_rounds", "--prune-rounds")):
        if getattr(args, name) < 1:
            raise ValueError(f"{option} must be at least 1, got {getattr(args, name)}")
    if args.val_split < 0:
        raise ValueError(f"--val-split must be at least 0, got {args.val_split}")
    for name, option in (("lr", "--lr"), ("centroid_lr", "--centroid-lr")):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            raise ValueError(f"{option} must be positive, got {getattr(args, name)}")


def summarize(result: dict) -> None:
    print(f"wrote {result['out']}: {result['bytes']:,} bytes, {result['ratio_vs_fp32']:.1f}x smaller than fp32, "
          f"{100 * result['nonzero_fraction']:.1f}% of weights non-zero, coder {result['coder']}")
    for key, value in result["breakdown"].items():
        print(f"  {key:10} {value:,}")
    if result.get("retraining"):
        print("retraining:")
        for record in result["retraining"]:
            line = f"  {record['stage']:18} loss {record['loss']:.4f}"
            if record.get("top1") is not None:
                line += f", validation top-1 {100 * record['top1']:.1f}%, top-5 {100 * record['top5']:.1f}%"
            print(line)


def _summary(out, model, result) -> dict:
    """The command's report of a ``CompressionResult``: sizes, ratio, sparsity, bits by paper name."""
    from squeezenet.compress.layer_settings import layer_aliases

    names = list(layer_aliases(model).values())
    return {
        "out": str(out),
        "bytes": len(result.data),
        "fp32_bytes": 4 * result.parameters,
        "ratio_vs_fp32": round(4 * result.parameters / len(result.data), 3),
        "nonzero_fraction": round(result.nonzero_weights / result.weights, 6),
        "bits": dict(zip(names, result.bits)),
        "coder": result.coder,
        "breakdown": result.breakdown,
    }


def _retrainers(args, model, log: list[dict], learning_rates: tuple[float, ...]):
    """One ``retrain(model)`` per peak learning rate: ``--epochs`` epochs of squeezenet.train on
    ``--finetune-data``, the data read once for all of them."""
    from dataclasses import replace

    import torch

    from squeezenet.train import config_for_preset, load_datasets, train_model

    config = config_for_preset("fast", data=args.finetune_data, val_split=args.val_split, epochs=args.epochs,
                               lr=learning_rates[0], batch_size=args.batch_size, out=None,
                               show_progress=not args.json, on_bad_image=args.on_bad_image)
    train_set, val_set = load_datasets(config, model.spec.input_size)
    if len(train_set.class_names) != model.spec.num_classes:
        raise ValueError(f"{args.finetune_data} has {len(train_set.class_names)} classes but the model "
                         f"{model.spec.num_classes}")

    def retrainer(lr: float, stage_name):
        stage_config = replace(config, lr=lr)
        calls = 0

        def retrain(student) -> None:
            nonlocal calls
            calls += 1
            metrics = train_model(student, train_set, val_set, stage_config)
            # The trainer moves the model to its device in channels-last layout; the encoder wants it back.
            student.to("cpu", memory_format=torch.contiguous_format)
            log.append({"stage": stage_name(calls),
                        **{key: metrics[key] for key in ("loss", "top1", "top5", "skipped_images") if key in metrics}})

        return retrain

    # The pipeline calls the first once per prune round (only when pruning), the second once after quantization.
    stage_names = (lambda call: f"prune round {call}/{args.prune_rounds}", lambda call: "centroids")
    return tuple(retrainer(lr, name) for lr, name in zip(learning_rates, stage_names))


def _check_preset_arguments(args) -> None:
    from squeezenet.compress.presets import COMPRESSION_RECIPES

    if args.preset not in COMPRESSION_RECIPES:
        raise ValueError(f"unknown preset {args.preset!r}; choose from {', '.join(COMPRESSION_RECIPES)}")
    if any(value is not None for value in (args.prune, args.bits, args.coder, args.finetune_data)):
        raise ValueError("--preset sets the bits, pruning, coder and fine-tuning itself; drop those options")
    if args.calibration_data is None:
        raise ValueError(f"preset {args.preset} needs --calibration-data (a folder of unlabelled photos)")


def _run_preset(args, model) -> dict:
    from squeezenet.compress.calibration import load_calibration_images
    from squeezenet.compress.pipeline import compress_model
    from squeezenet.compress.presets import COMPRESSION_RECIPES

    named = COMPRESSION_RECIPES[args.preset]
    calibration = load_calibration_images(args.calibration_data, named.calibration_preprocess, model.spec.input_size,
                                          on_bad_image=args.on_bad_image)
    result = compress_model(model, named.recipe, args.out, calibration=calibration, show_progress=not args.json)
    summary = _summary(args.out, model, result)
    summary.update(preset=args.preset, calibration_images=len(calibration.images), skipped_images=calibration.skipped)
    return summary
