"""squeezenet train: train a model on an ImageFolder (one process, or DDP under torchrun).

Every flag is a field of ``squeezenet.train.TrainConfig`` (``--batch-size`` is ``batch_size``); its
help, choices and metavar come from the field's metadata, so a new field needs no edit here.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from dataclasses import MISSING, fields

__all__ = ["add_parser", "run", "summarize"]


def add_parser(subparsers):
    from squeezenet.train import TrainConfig

    parser = subparsers.add_parser(
        "train", help="train a model on an ImageFolder (DDP under torchrun)", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Multi-process: torchrun --nproc-per-node N -m squeezenet train ... (the batch size is global).")
    add_config_arguments(parser, TrainConfig)
    return parser


def add_config_arguments(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One flag per field of the dataclass ``config_class`` whose metadata does not say ``cli=False``.

    Every flag defaults to None, so an absent flag leaves the config's own default (or its preset's)
    in force; bools become ``--name`` (default False), ``--no-name`` (default True) or both (None)."""
    types_of = typing.get_type_hints(config_class)
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for config_field in fields(config_class):
        metadata = config_field.metadata
        if not metadata.get("cli", True):
            continue
        default = config_field.default if config_field.default is not MISSING else None
        kind = _plain_type(types_of[config_field.name])
        flag = metadata.get("flag", "--" + config_field.name.replace("_", "-"))
        options: dict = {"dest": config_field.name, "default": None, "help": metadata.get("help")}
        if kind is bool:
            options["action"] = {False: "store_true", True: "store_false"}.get(default, argparse.BooleanOptionalAction)
        else:
            options.update(type=kind, choices=metadata.get("choices"), metavar=metadata.get("metavar"))
            if metadata.get("required"):
                options["required"] = True
            elif default not in (None, ""):
                options["help"] = f"{options['help']} (default {default})"
        target = parser
        if "group" in metadata:
            if metadata["group"] not in groups:
                groups[metadata["group"]] = parser.add_mutually_exclusive_group()
            target = groups[metadata["group"]]
        target.add_argument(flag, **options)


def _plain_type(annotation):
    """``int`` for ``int`` or ``int | None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def run(args) -> dict:
    from squeezenet.train import TrainConfig, config_for_preset, train

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    config = config_for_preset(given.pop("preset") or TrainConfig.preset, **given, show_progress=not args.json)
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
