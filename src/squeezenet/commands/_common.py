"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

from squeezenet.models import ARCHITECTURES

__all__ = ["add_model_arguments", "load_model_from_args"]


def add_model_arguments(parser: argparse.ArgumentParser, *, weights_required: bool = True) -> None:
    parser.add_argument("--weights", required=weights_required,
                        help="model file: .net, .sqz, .pth/.pt or .safetensors, a path or an https URL")
    parser.add_argument("--arch", help=f"architecture, needed only for a bare state dict ({', '.join(ARCHITECTURES)})")


def load_model_from_args(args: argparse.Namespace):
    from squeezenet.weights import load_model

    if args.arch is not None and args.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {args.arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return load_model(args.weights, args.arch)
