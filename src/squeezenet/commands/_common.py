"""Arguments and checks shared by several subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from squeezenet.data import PREPROCESSINGS
from squeezenet.models import ARCHITECTURES

__all__ = ["add_model_arguments", "add_photo_arguments", "checked_arch", "load_model_from_args",
           "refuse_output_over_input"]


def add_model_arguments(parser: argparse.ArgumentParser, *, weights_required: bool = True) -> None:
    parser.add_argument("--weights", required=weights_required,
                        help="model file: .net, .sqz, .pth/.pt or .safetensors, a path or an https URL")
    parser.add_argument("--arch", help=f"architecture, needed only for a bare state dict ({', '.join(ARCHITECTURES)})")


def add_photo_arguments(parser: argparse.ArgumentParser, *, preprocess_help: str, on_bad_image_help: str) -> None:
    """``--preprocess`` and ``--on-bad-image`` of the commands that run a model on photos."""
    parser.add_argument("--preprocess", choices=PREPROCESSINGS, help=preprocess_help)
    parser.add_argument("--on-bad-image", choices=("skip", "fail"), default="skip", help=on_bad_image_help)


def checked_arch(args: argparse.Namespace) -> str | None:
    """``--arch`` once it is known to name an architecture (None when not given)."""
    if args.arch is not None and args.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {args.arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return args.arch


def load_model_from_args(args: argparse.Namespace):
    from squeezenet.weights import load_model

    return load_model(args.weights, checked_arch(args))


def refuse_output_over_input(out: str | os.PathLike, weights: str | os.PathLike, *, files: tuple[str, ...] = ()) -> None:
    """Raise ValueError when writing ``out`` (a file, or a folder receiving ``files``) would overwrite
    the input model ``weights`` or put a file inside it: the input would be lost on success.

    Paths are compared resolved (symlinks, ``..``) and, when both exist, as the same file (hard links)."""
    if str(weights).lower().startswith(("http://", "https://")):
        return  # a download lives in the cache, which no --out names by accident
    model = Path(weights).resolve()
    folder = Path(out).resolve()
    for written in (folder, *(folder / name for name in files)):
        if written == model or model in written.parents or _same_file(written, model):
            raise ValueError(f"--out {out} would overwrite the input model {weights}; choose another output path")


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist yet
        return False
